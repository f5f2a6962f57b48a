"""Client authentication with `private_key_jwt` (RFC 7523 section 2.2, OIDC Core 9).

A client registered with token_endpoint_auth_method "private_key_jwt" proves itself with a JWT
it signs with one of its keys: its JWKS is stored inline (Client.jwks) or published at
Client.jwks_uri, fetched with a short timeout and cached (IDP_CLIENT_JWKS_CACHE_SECONDS; a
`kid` that is not in the cached set refetches at most once per IDP_CLIENT_JWKS_REFETCH_SECONDS,
so a rotation on the client's side is picked up without letting anyone hammer the URI).

An assertion is accepted when: its header's `alg` is PS256 or ES256 (never none, HS* or RS*);
its signature verifies with the client's key (joserfc, key chosen by kid); `iss` and `sub` are
the client_id; `aud` is the issuer (a FAPI client), or holds the issuer or the URL of the
endpoint it is presented to (RFC 7523, other clients); `exp` is
in the future and at most IDP_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS away; `jti` was never seen
before for this client (Redis, kept until the assertion expires).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp import conf

logger = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("PS256", "ES256")
MAX_ASSERTION_LENGTH = 8192
_JWKS_PREFIX = "idp-client-jwks:"
_JTI_PREFIX = "idp-assertion-jti:"


class AssertionInvalid(Exception):
    """The assertion is refused (the token endpoint answers invalid_client)."""


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def jwks_problem(value: Any) -> str:
    """Why a JWKS given at registration cannot be used, or "" (public keys of PS256/ES256 only)."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        return 'A JWKS is a JSON object with a non-empty "keys" list.'
    for key in value["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            return "Each key must be an RSA or EC public key."
        if any(member in key for member in ("d", "p", "q", "dp", "dq", "qi", "k")):
            return "The JWKS must hold public keys only: never send a private key."
    try:
        keys = KeySet.import_key_set(value)  # type: ignore[arg-type]  # checked shape above
    except (JoseError, ValueError, TypeError) as exc:
        return f"The JWKS cannot be read: {exc}"
    if any(k.key_type == "RSA" and getattr(k.raw_value, "key_size", 0) < 2048 for k in keys.keys):
        return "RSA keys must have at least 2048 bits."
    return ""


def fetch_jwks(uri: str) -> dict[str, Any]:
    """GET the client's JWKS (short timeout, no redirects); raises AssertionInvalid."""
    timeout = float(getattr(settings, "IDP_CLIENT_JWKS_TIMEOUT_SECONDS", 3))
    try:
        response = requests.get(
            uri, timeout=(min(timeout, 2.0), timeout), allow_redirects=False, headers={"Accept": "application/json"}
        )
    except requests.RequestException as exc:
        logger.warning("client JWKS unreachable: %s (%s)", uri, type(exc).__name__)
        raise AssertionInvalid("The client's key set cannot be fetched.") from exc
    if response.status_code != 200 or len(response.content) > 65536:
        logger.warning("client JWKS refused: %s answered %s", uri, response.status_code)
        raise AssertionInvalid("The client's key set cannot be fetched.")
    try:
        data = response.json()
    except ValueError as exc:
        raise AssertionInvalid("The client's key set is not JSON.") from exc
    problem = jwks_problem(data)
    if problem:
        raise AssertionInvalid(problem)
    return dict(data)


def _cache_key(client: Any) -> str:
    return _JWKS_PREFIX + hashlib.sha256(f"{client.pk}:{client.jwks_uri}".encode()).hexdigest()


def client_keys(client: Any, *, kid: str | None = None) -> KeySet:
    """The client's public keys: inline, or from its JWKS URI (cached; refetched on an unknown kid)."""
    if client.jwks:
        return KeySet.import_key_set(client.jwks)
    if not client.jwks_uri:
        raise AssertionInvalid("The client has no registered keys.")
    key = _cache_key(client)
    data = cache.get(key)
    unknown_kid = data is not None and kid and kid not in {k.get("kid") for k in data.get("keys", [])}
    if unknown_kid and cache.add(key + ":refetch", 1, timeout=_setting("IDP_CLIENT_JWKS_REFETCH_SECONDS", 60)):
        data = None  # rotated on the client's side: fetch again (once a minute at most)
    if data is None:
        data = fetch_jwks(client.jwks_uri)
        cache.set(key, data, timeout=_setting("IDP_CLIENT_JWKS_CACHE_SECONDS", 300))
    return KeySet.import_key_set(data)


def unverified_issuer(assertion: str) -> str | None:
    """`iss` of an assertion before it is checked: only to find which client it claims to be."""
    try:
        payload = jws.extract_compact(assertion.encode("ascii")).payload
        import json

        claims = json.loads(payload)
    except (JoseError, ValueError, UnicodeError, TypeError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None


def verify_assertion(assertion: str, *, client: Any, endpoint_url: str) -> None:
    """Checks a client assertion for `client` presented at `endpoint_url`; raises AssertionInvalid."""
    if not assertion or len(assertion) > MAX_ASSERTION_LENGTH or assertion.count(".") != 2:
        raise AssertionInvalid("The client assertion is not a JWT.")
    try:
        header = jws.extract_compact(assertion.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError, TypeError) as exc:
        raise AssertionInvalid("The client assertion is not a JWT.") from exc
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AssertionInvalid(f"The client assertion must be signed with {' or '.join(ALGORITHMS)}.")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    try:
        keys = client_keys(client, kid=kid)
        token = jwt.decode(assertion, keys, algorithms=[str(alg)])
    except (JoseError, ValueError, TypeError) as exc:
        raise AssertionInvalid("The client assertion's signature is not valid.") from exc
    claims = token.claims
    client_id = client.client_id
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionInvalid("The client assertion's iss and sub must be the client_id.")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    # FAPI 2.0 5.3.2.1-8: a FAPI client's assertion names the issuer, nothing else; RFC 7523 also
    # lets other clients name the endpoint they call.
    accepted = {conf.issuer()} if client.fapi else {conf.issuer(), endpoint_url.rstrip("/"), endpoint_url}
    if not any(isinstance(a, str) and (a in accepted or a.rstrip("/") in accepted) for a in audiences):
        raise AssertionInvalid("The client assertion's aud must be the issuer.")
    now = int(timezone.now().timestamp())
    leeway = int(settings.JWT_LEEWAY_SECONDS)
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now - leeway:
        raise AssertionInvalid("The client assertion has expired.")
    if exp > now + _setting("IDP_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS", 300):
        raise AssertionInvalid("The client assertion lives too long.")
    iat = claims.get("iat")
    # FAPI 2.0 5.3.1: iat up to 10 seconds in the future is clock offset, not an error.
    if iat is not None and (not isinstance(iat, int) or iat > now + max(10, leeway)):
        raise AssertionInvalid("The client assertion is from the future.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise AssertionInvalid("The client assertion has no jti.")
    replay = _JTI_PREFIX + hashlib.sha256(f"{client_id}:{jti}".encode()).hexdigest()
    if not cache.add(replay, 1, timeout=max(1, exp - now + leeway)):
        raise AssertionInvalid("This client assertion was already used.")
