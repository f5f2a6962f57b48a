"""The provider's JWTs: access tokens (RFC 9068), ID tokens and back-channel logout tokens.

RS256, signed with the key ring of the mobile API (accounts.tokens: one JWKS at
/.well-known/jwks.json, `kid` in every header, previous keys still verifying); a FAPI 2.0 client's
ID and access tokens are ES256, signed with the ring's EC key (accounts.eckey, same JWKS).
Signing and verification are PyJWT's; the algorithm follows from the key the `kid` names (one of
ours), never from a token header alone. A DPoP-bound access token carries `cnf.jkt` (RFC 9449).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone

from accounts import eckey
from accounts import tokens as account_tokens
from idp import conf

ALGORITHM = "RS256"
MAX_TOKEN_LENGTH = 8192


def _sign(payload: dict[str, Any], *, typ: str, algorithm: str = ALGORITHM) -> str:
    if algorithm == eckey.ALGORITHM:
        ec_ring = eckey.keyring()
        return jwt.encode(
            payload, ec_ring.private_key, algorithm=eckey.ALGORITHM, headers={"kid": ec_ring.kid, "typ": typ}
        )
    ring = account_tokens.keyring()
    return jwt.encode(payload, ring.private_key, algorithm=ALGORITHM, headers={"kid": ring.kid, "typ": typ})


def verification_key(header: dict[str, Any]) -> tuple[Any, str] | None:
    """(key, algorithm) for a header's kid among our own keys, or None (alg must match the key)."""
    kid = header.get("kid")
    if not isinstance(kid, str):
        return None
    rsa_key = account_tokens.keyring().public_keys.get(kid)
    if rsa_key is not None:
        return (rsa_key, ALGORITHM) if header.get("alg") == ALGORITHM else None
    if eckey.configured():
        ec_key = eckey.keyring().public_keys.get(kid)
        if ec_key is not None and header.get("alg") == eckey.ALGORITHM:
            return ec_key, eckey.ALGORITHM
    return None


def client_algorithm(client: Any) -> str:
    return str(getattr(client, "signing_algorithm", ALGORITHM))


def left_half_hash(value: str) -> str:
    """at_hash / c_hash (OIDC Core 3.1.3.6): the left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


@dataclass(frozen=True)
class LoginContext:
    """How the user's web login was authenticated, carried from the grant into every token."""

    sid: str = ""
    auth_time: datetime | None = None
    amr: tuple[str, ...] = ()

    @property
    def acr(self) -> str:
        from accounts.authn import acr_for

        return acr_for(self.amr)


def access_token_issue(*, request: Any) -> tuple[str, str]:
    """(token, jti) for an oauthlib token request: the client, the user (or none), the scopes."""
    now = int(timezone.now().timestamp())
    client = request.client
    user = getattr(request, "user", None)
    login: LoginContext = getattr(request, "idp_login", None) or LoginContext()
    jti = secrets.token_urlsafe(16)
    payload: dict[str, Any] = {
        "iss": conf.issuer(),
        "aud": conf.audience(),
        "sub": str(user.public_id) if user is not None and getattr(user, "pk", None) else client.client_id,
        "client_id": client.client_id,
        "scope": " ".join(request.scopes or []),
        "iat": now,
        "exp": now + conf.access_lifetime(),
        "jti": jti,
    }
    jkt = getattr(request, "idp_dpop_jkt", "")
    if jkt:
        payload["cnf"] = {"jkt": jkt}  # RFC 9449 6.1: usable only with proofs of this key
    if user is not None and getattr(user, "pk", None) and login.sid:
        payload["sid"] = login.sid
        payload["acr"] = login.acr
        payload["amr"] = list(login.amr)
        if login.auth_time is not None:
            payload["auth_time"] = int(login.auth_time.timestamp())
    return _sign(payload, typ=conf.ACCESS_TOKEN_TYPE, algorithm=client_algorithm(client)), jti


def access_token_generator(request: Any, refresh_token: bool = False) -> str:
    """ACCESS_TOKEN_GENERATOR of django-oauth-toolkit; the jti is kept on the request for storage."""
    token, jti = access_token_issue(request=request)
    request.idp_jti = jti
    return token


def id_token_issue(
    *, claims: dict[str, Any], user: Any, client: Any, login: LoginContext, scopes: list[str]
) -> tuple[str, str, datetime]:
    """The signed ID token, its jti (a UUID, DOT's IDToken.jti) and its expiry."""
    now = timezone.now()
    expires = now + timedelta(seconds=conf.id_token_lifetime())
    jti = str(uuid.uuid4())
    payload: dict[str, Any] = {
        **claims,
        "iss": conf.issuer(),
        "sub": str(user.public_id),
        "aud": client.client_id,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": jti,
        "auth_time": int((login.auth_time or now).timestamp()),
        "amr": list(login.amr),
        "acr": login.acr,
    }
    if login.sid:
        payload["sid"] = login.sid
    if "email" in scopes:
        payload["email"] = user.email
        payload["email_verified"] = bool(user.email_verified)
    else:
        payload.pop("email", None)
        payload.pop("email_verified", None)
    return _sign(payload, typ="JWT", algorithm=client_algorithm(client)), jti, expires


def logout_token_issue(*, client_id: str, sub: str, sid: str) -> str:
    """An OpenID Connect Back-Channel Logout 1.0 logout token (signed at each delivery attempt)."""
    now = int(timezone.now().timestamp())
    payload = {
        "iss": conf.issuer(),
        "aud": client_id,
        "iat": now,
        "exp": now + conf.logout_token_lifetime(),
        "jti": secrets.token_urlsafe(16),
        "sub": sub,
        "sid": sid,
        "events": {conf.LOGOUT_EVENT: {}},
    }
    return _sign(payload, typ=conf.LOGOUT_TOKEN_TYPE)


class InvalidProviderToken(Exception):
    def __init__(self, detail: str = "The access token is not valid.", code: str = "token_not_valid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class ProviderClaims:
    """A verified provider access token; request.auth in API views."""

    sub: str
    client_id: str
    scope: tuple[str, ...]
    jti: str
    iat: int
    exp: int
    sid: str = ""
    acr: str = ""
    amr: tuple[str, ...] = ()
    auth_time: int | None = None
    jkt: str = ""  # cnf.jkt: the DPoP key the token is bound to ("" for a bearer token)

    @property
    def is_user_token(self) -> bool:
        return bool(self.sid)

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        """Like the mobile claims: accounts.authn.require_recent_auth reads auth_time and amr."""
        return getattr(self, name, default)


def unverified_claims(raw: str) -> dict[str, Any] | None:
    """The payload without checking it: only to tell a provider token from a mobile one."""
    payload = _peek(raw)
    return dict(payload) if payload is not None else None


@functools.lru_cache(maxsize=8192)
def _peek(raw: str) -> dict[str, Any] | None:
    # Routing only: which authentication class checks it; the signature is verified next. Every
    # bearer request (mobile tokens too) asks, with the same token for its 15 minutes: memoised.
    try:
        payload = jwt.decode(raw, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


def verify_jwt(raw: str, *, typ: str, audience: str | None, required: list[str]) -> dict[str, Any]:
    """Signature by one of our keys (by kid; RS256 for the RSA keys, ES256 for the EC key), typ,
    iss, aud, exp, iat."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        raise InvalidProviderToken()
    try:
        header = jwt.get_unverified_header(raw)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidProviderToken() from exc
    if header.get("typ") != typ:
        raise InvalidProviderToken()
    found = verification_key(header)
    if found is None:
        raise InvalidProviderToken()
    key, algorithm = found
    try:
        claims = jwt.decode(
            raw,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=conf.issuer(),
            leeway=int(settings.JWT_LEEWAY_SECONDS),
            options={"require": required, "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidProviderToken("The access token has expired.", code="token_expired") from exc
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidProviderToken() from exc
    return claims


def access_token_decode(raw: str) -> ProviderClaims:
    claims = verify_jwt(
        raw,
        typ=conf.ACCESS_TOKEN_TYPE,
        audience=conf.audience(),
        required=["iss", "aud", "sub", "client_id", "scope", "iat", "exp", "jti"],
    )
    sub, client_id, scope, jti = claims.get("sub"), claims.get("client_id"), claims.get("scope"), claims.get("jti")
    if not all(isinstance(v, str) for v in (sub, client_id, scope, jti)):
        raise InvalidProviderToken()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not (isinstance(iat, int) and isinstance(exp, int)):
        raise InvalidProviderToken()
    if iat > int(timezone.now().timestamp()) + int(settings.JWT_LEEWAY_SECONDS):
        raise InvalidProviderToken()
    sid = claims.get("sid", "")
    amr = claims.get("amr", [])
    if not isinstance(sid, str) or not (isinstance(amr, list) and all(isinstance(a, str) for a in amr)):
        raise InvalidProviderToken()
    auth_time = claims.get("auth_time")
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else ""
    if cnf is not None and not (isinstance(jkt, str) and jkt):
        raise InvalidProviderToken()
    return ProviderClaims(
        sub=str(sub),
        client_id=str(client_id),
        scope=tuple(str(scope).split()),
        jti=str(jti),
        iat=iat,
        exp=exp,
        sid=sid,
        acr=str(claims.get("acr", "")),
        amr=tuple(amr),
        auth_time=auth_time if isinstance(auth_time, int) else None,
        jkt=jkt or "",
    )


def id_token_decode(raw: str, *, accept_expired: bool = True) -> dict[str, Any]:
    """An ID token of ours (for id_token_hint): any audience, expired accepted when asked."""
    try:
        header = jwt.get_unverified_header(raw)
        found = verification_key(header)
        if found is None:
            raise InvalidProviderToken()
        key, algorithm = found
        return jwt.decode(
            raw,
            key,
            algorithms=[algorithm],
            issuer=conf.issuer(),
            options={"verify_aud": False, "verify_exp": not accept_expired, "require": ["iss", "sub", "aud", "jti"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidProviderToken() from exc
