"""Validation of the provider's ID tokens and logout tokens.

ID token: OpenID Connect Core 1.0 §3.1.3.7. Logout token: OpenID Connect Back-Channel Logout 1.0
§2.4 and §2.6. Signatures are checked by joserfc against the provider's JWKS, with the algorithms
fixed here (asymmetric only; never what a token's header or the discovery document says);
claims by authlib's `CodeIDToken` (nonce, at_hash, azp) on joserfc's claims registry (iss, aud,
exp, iat). Nothing here touches Django, so the tests can feed it keys of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, KeySetSerialization

ALGORITHMS = ("RS256", "PS256", "ES256")
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Explicit typing (RFC 8725 §3.11): a token typed for another purpose is never accepted here.
ID_TOKEN_TYPES = frozenset({None, "jwt"})
LOGOUT_TOKEN_TYPES = frozenset({None, "jwt", "logout+jwt"})

# Returns the provider's JWKS (a dict); called with True to bypass a cache after a key rotation.
KeyProvider = Callable[[bool], dict[str, Any]]


class TokenRejected(Exception):
    """A token that must not be trusted; `reason` is safe to log and to show (never the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LogoutRequest:
    """What a valid logout token asks for: end the sessions of `sid` (and/or of `sub`) at `iss`."""

    iss: str
    sid: str | None
    sub: str | None
    jti: str
    issued_at: int
    remember_until: int


def _media_type(header: dict[str, Any]) -> str | None:
    typ = header.get("typ")
    if typ is None:
        return None
    text = str(typ).lower()
    return text.removeprefix("application/")


def _describe(exc: JoseError) -> str:
    claim = getattr(exc, "claim", None)
    return f"{exc.error} ({claim}): {exc.description}" if claim else f"{exc.error}: {exc.description}"


def _key_set(jwks: dict[str, Any]) -> KeySet:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise TokenRejected("the provider's JWKS is not a key set")
    return KeySet.import_key_set(cast(KeySetSerialization, jwks))


def _verified(value: str, keys: KeyProvider) -> jwt.Token:
    if not isinstance(value, str) or value.count(".") != 2:
        raise TokenRejected("not a signed JWT (JWS compact serialization)")
    try:
        try:
            return jwt.decode(value, _key_set(keys(False)), algorithms=list(ALGORITHMS))
        except InvalidKeyIdError:
            # A kid the cached key set does not know: the provider may have rotated; look once more.
            return jwt.decode(value, _key_set(keys(True)), algorithms=list(ALGORITHMS))
    except JoseError as exc:
        raise TokenRejected(f"signature or format refused ({exc.error})") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise TokenRejected("malformed token") from exc


def validate_id_token(
    id_token: str,
    *,
    keys: KeyProvider,
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str,
    leeway: int = 30,
    now: int | None = None,
) -> dict[str, Any]:
    """The ID token's claims once signature, iss, aud, azp, exp, iat, nonce and at_hash all check out."""
    if not nonce:
        raise TokenRejected("no nonce was sent with the authentication request")
    token = _verified(id_token, keys)
    if _media_type(token.header) not in ID_TOKEN_TYPES:
        raise TokenRejected(f"token type {token.header.get('typ')!r} is not an ID token")
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
        # The provider always issues an access token beside the ID token, so its hash is required.
        "at_hash": {"essential": True},
    }
    claims = CodeIDToken(
        token.claims,
        token.header,
        options,
        {"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        claims.validate(now=now, leeway=leeway)
    except JoseError as exc:
        raise TokenRejected(f"ID token claims refused: {_describe(exc)}") from exc
    return dict(claims)


def validate_logout_token(
    logout_token: str,
    *,
    keys: KeyProvider,
    issuer: str,
    client_id: str,
    leeway: int = 30,
    jti_retention: int = 86_400,
    now: int | None = None,
) -> LogoutRequest:
    """Back-Channel Logout 1.0 §2.6, steps 2 to 8 (the replay check of `jti` is the caller's, with state)."""
    token = _verified(logout_token, keys)
    if _media_type(token.header) not in LOGOUT_TOKEN_TYPES:
        raise TokenRejected(f"token type {token.header.get('typ')!r} is not a logout token")
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=leeway,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        jti={"essential": True},
        events={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise TokenRejected(f"logout token claims refused: {_describe(exc)}") from exc
    events = claims["events"]
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise TokenRejected("events claim does not declare a back-channel logout")
    if "nonce" in claims:
        # §2.4: a nonce makes a logout token unusable as a forged ID token; its presence is an attack.
        raise TokenRejected("a logout token must not carry a nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if sid is None and sub is None:
        raise TokenRejected("a logout token names a sid, a sub or both")
    for name, value in (("sid", sid), ("sub", sub)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TokenRejected(f"{name} must be a non-empty string")
    issued_at = int(claims["iat"])
    current = int(time.time()) if now is None else now
    expires = claims.get("exp")
    remember_until = int(expires) + leeway if isinstance(expires, int | float) else current + jti_retention
    return LogoutRequest(
        iss=issuer,
        sid=sid,
        sub=sub,
        jti=str(claims["jti"]),
        issued_at=issued_at,
        remember_until=max(remember_until, current + leeway),
    )
