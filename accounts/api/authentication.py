"""Bearer JWT authentication for the API, on simplejwt's header handling.

Every request: the signature, algorithm, kid, iss, aud, exp and iat of the access token
(accounts.tokens), then whether its login (`sid`) is live and belongs to `sub`
(accounts.revocation: Redis when warm, the session registry when Redis does not know the sid,
so neither a flushed Redis nor a forged-but-signed sid gets through), then the user by `sub`
(accounts.usercache: Redis when warm, invalidated on every change of the user, so a disabled
account is refused at once).

Once the token is verified, everything the request will read from Redis is named at once and
read in one pipelined round trip (core.cached.prefetch): the revocation entries, the user row,
and, when this process already knows the user's primary key, the view's throttle counters and
the values its `prefetch_tags` name (the /me factor fields). The checks then run exactly as
before on those answers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed

from accounts import dpop as accounts_dpop
from accounts import revocation, tokens
from accounts.models import User, UserSession
from accounts.usercache import pk_hint, prefetch_keys, user_by_public_id
from core import cached, context

logger = logging.getLogger(__name__)


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Please try again in a moment."
    default_code = "service_unavailable"


class JWTAuthentication(SimpleJWTAuthentication):
    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[User, tokens.AccessClaims] | None:  # type: ignore[override]
        header = self.get_header(request)
        if header is None:
            return None
        raw = self.get_raw_token(header)
        # --- DPoP (issue 18): the scheme and, for a bound token, its proof (accounts/dpop.py) ---
        if raw is None:
            raw = accounts_dpop.dpop_scheme_token(header)
        if raw is None:
            return None
        claims = self._decode(raw)
        self._check_revoked(claims, prefetch_for=request)
        accounts_dpop.resource_check(request, header=header, raw=raw, jkt=claims.jkt)
        # --- end DPoP ---
        user = self.get_user(claims)
        _touch(claims.sid)
        context.update(user_public_id=claims.sub)
        return user, claims

    def get_header(self, request: Request) -> bytes | None:  # type: ignore[override]
        try:
            return super().get_header(request)
        except UnicodeError as exc:  # a header that is not latin-1 text
            raise AuthenticationFailed(
                "The Authorization header is not valid.", code="bad_authorization_header"
            ) from exc

    def get_validated_token(self, raw_token: bytes) -> tokens.AccessClaims:  # type: ignore[override]
        claims = self._decode(raw_token)
        self._check_revoked(claims)
        return claims

    @staticmethod
    def _decode(raw_token: bytes) -> tokens.AccessClaims:
        try:
            return tokens.access_token_decode(raw_token)
        except tokens.TokenInvalid as exc:
            raise AuthenticationFailed(exc.detail, code=exc.code) from exc

    @staticmethod
    def _check_revoked(claims: tokens.AccessClaims, *, prefetch_for: Request | None = None) -> None:
        try:
            if prefetch_for is not None:
                prefetch(prefetch_for, user_public_id=claims.sub, keys=revocation.keys(claims.sid))
            revoked = revocation.revoked_reason(claims.sid, subject=claims.sub)
        except Exception as exc:  # Redis or the registry unreachable: fail closed, a 503 rather than a 500
            logger.exception("revocation list unavailable")
            raise ServiceUnavailable() from exc
        if revoked == revocation.UNKNOWN:
            raise AuthenticationFailed("The access token is not valid.", code="token_not_valid")
        if revoked:
            raise AuthenticationFailed("This login has ended. Please log in again.", code="token_revoked")

    def get_user(self, validated_token: Any) -> User:  # type: ignore[override]
        user = user_by_public_id(validated_token.sub)  # Redis when warm (accounts.usercache)
        if user is None or not user.is_active:
            raise AuthenticationFailed("The access token is not valid.", code="token_not_valid")
        return user


def prefetch(request: Any, *, user_public_id: str, keys: list[str]) -> None:
    """One Redis round trip for what this bearer request reads next (core.cached.prefetch): `keys`
    (the token's revocation entries), the user row, and, when this process knows the user's
    primary key, the view's throttle counters and the values of its `prefetch_tags`."""
    wanted = [*keys, *prefetch_keys(user_public_id)]
    counters: list[tuple[str, int]] = []
    pk = pk_hint(user_public_id)
    if pk is not None:
        view = (getattr(request, "parser_context", None) or {}).get("view")
        wanted.extend(cached.tagged_keys(getattr(view, "prefetch_tags", ()), pk))
        for throttle_class in getattr(view, "throttle_classes", ()):
            plan = getattr(throttle_class, "prefetch_plan", None)
            planned = plan(view, pk) if plan is not None else None
            if planned is not None:
                counters.append(planned[0])
                wanted.append(planned[1])
    cached.prefetch(wanted, incr=counters)


# sid -> when this process last asked Redis about touching it (epoch seconds): within the
# interval, the answer is known to be "already touched", so no round trip at all.
_touched: dict[str, float] = {}
_TOUCHED_MAX = 50_000


def _touch(sid: str) -> None:
    """Records activity on the login at most once per SESSION_TOUCH_INTERVAL, across every node
    (SET NX in Redis); a process asks Redis at most once per interval per sid."""
    interval = max(1, int(settings.SESSION_TOUCH_INTERVAL))
    now = time.time()  # the wall clock (tests move it with time_machine)
    if 0 <= now - _touched.get(sid, -interval) < interval:
        return
    if len(_touched) >= _TOUCHED_MAX:
        _touched.clear()
    _touched[sid] = now
    if cache.add(f"api-touch:{sid}", 1, timeout=interval):
        UserSession.objects.filter(id=sid, ended_at__isnull=True).update(last_seen_at=timezone.now())


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    """OpenAPI: the bearer scheme of JWTAuthentication (for every view using it)."""

    target_class = "accounts.api.authentication.JWTAuthentication"
    name = "bearerAuth"
    match_subclasses = True

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "Access token from /api/v1/auth/login (RS256 with keys at /.well-known/jwks.json, or HS512; "
                "15 minutes). "
                "Refused at once when its login (`sid`) has ended."
            ),
        }
