"""A stand-in for the provider's HTTP endpoints (discovery, JWKS, token), served through `responses`.

It signs with keys generated here, checks the PKCE verifier the relying party sends against the
challenge of the authorization request (RFC 7636 §4.6) and the client's HTTP Basic credentials,
and hands out each code once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import RSAKey

ISSUER = "http://op.test"
CLIENT_ID = "mortgage-app"
CLIENT_SECRET = "not-a-real-secret"  # noqa: S105 (the fake provider's own)
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

_KEYS: dict[str, RSAKey] = {}


def signing_key(kid: str) -> RSAKey:
    """RSA keys are slow to make: one per kid for the whole run."""
    if kid not in _KEYS:
        _KEYS[kid] = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
    return _KEYS[kid]


def sign(claims: dict[str, Any], *, kid: str = "k1", header: dict[str, Any] | None = None) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid, **(header or {})}, claims, signing_key(kid))


class FakeProvider:
    def __init__(self, mock: responses.RequestsMock, *, sends_iss: bool = False) -> None:
        self.sends_iss = sends_iss
        self.mock = mock
        self.published = ["k1"]
        self.jwks_fetches = 0
        self.codes: dict[str, dict[str, Any]] = {}
        self.id_token_claims: dict[str, Any] = {}
        self.corrupt_at_hash = False
        self.id_token_kid = "k1"  # noqa: S105 (a key id)
        self.issued_access_tokens: list[str] = []
        metadata = {**self.metadata(), "authorization_response_iss_parameter_supported": sends_iss}
        mock.add(responses.GET, f"{ISSUER}/.well-known/openid-configuration", json=metadata)
        mock.add_callback(responses.GET, f"{ISSUER}/.well-known/jwks.json", callback=self._jwks)
        mock.add_callback(responses.POST, f"{ISSUER}/o/token/", callback=self._token)

    @staticmethod
    def metadata() -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/o/authorize/",
            "token_endpoint": f"{ISSUER}/o/token/",
            "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
            "end_session_endpoint": f"{ISSUER}/o/logout/",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def _jwks(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.jwks_fetches += 1
        keys = [signing_key(kid).as_dict(private=False) for kid in self.published]
        return 200, {"Content-Type": "application/json"}, json.dumps({"keys": keys})

    def authorize(self, authorization_url: str, **claims: Any) -> dict[str, str]:
        """What the provider does at its authorization endpoint: remember the request, mint a code."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"request": query, "claims": claims}
        answer = {"code": code, "state": query["state"]}
        if self.sends_iss:
            answer["iss"] = ISSUER  # RFC 9207
        return answer

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return 401, {}, json.dumps({"error": "invalid_client"})
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None:
            return 400, {}, json.dumps({"error": "invalid_grant"})
        asked = grant["request"]
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if asked.get("code_challenge_method") != "S256" or challenge != asked.get("code_challenge"):
            return 400, {}, json.dumps({"error": "invalid_grant", "error_description": "PKCE verification failed"})
        if form.get("redirect_uri") != asked.get("redirect_uri"):
            return 400, {}, json.dumps({"error": "invalid_grant"})
        access_token = secrets.token_urlsafe(24)
        self.issued_access_tokens.append(access_token)
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "5b0b3f5e-0000-4000-8000-000000000001",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": now - 5,
            "nonce": asked.get("nonce"),
            "sid": "portal-session-1",
            "amr": ["pwd", "otp"],
            "acr": "urn:bank-portal:acr:mfa",
            "email": "customer@example.com",
            "email_verified": True,
            "at_hash": create_half_hash("tampered" if self.corrupt_at_hash else access_token, "RS256").decode(),
        }
        claims.update(grant["claims"])
        claims = {k: v for k, v in claims.items() if v is not None}
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "openid email",
            "id_token": sign(claims, kid=self.id_token_kid),
        }
        return 200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(body)


def logout_token(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(12),
        "sid": "portal-session-1",
        "sub": "5b0b3f5e-0000-4000-8000-000000000001",
        "events": {BACKCHANNEL_EVENT: {}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}
