"""Authentication API for the mobile app (see shared/API.md, "Authentication (mobile)").

Views validate, call one service and shape the answer; errors are core.api.APIError and come
out as {"detail", "code"} (+ "errors" on 400).
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import dpop as accounts_dpop
from accounts import pipeline, security, tokens
from accounts import services as account_services
from accounts.api import serializers as s
from accounts.api import services
from accounts.api.responses import login_response, tokens_response
from accounts.api.throttles import ScopedIPThrottle
from accounts.models import User, UserSession
from accounts.selectors import live_sessions
from core.api import APIError, api_error, retry_after_error

logger = logging.getLogger(__name__)

E400 = OpenApiResponse(s.ValidationErrorSerializer, description="Bad input (per-field errors)")
E401 = OpenApiResponse(s.ErrorSerializer, description="Not authenticated, or a bad, expired or revoked token")
E429 = OpenApiResponse(s.RetryErrorSerializer, description="Throttled or locked out (Retry-After header)")
GENERIC_BAD_CREDENTIALS = "Email or password is not correct."


def _django(request: Request) -> HttpRequest:
    return request._request


class _AuthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedIPThrottle]


# --- Login -------------------------------------------------------------------------------------


class LoginView(_AuthView):
    throttle_scope = "auth_login"

    @extend_schema(
        operation_id="auth_login",
        summary="Log in with email and password",
        description=(
            "Runs the same password check as the web (rate limit, lockout, proof-of-work CAPTCHA, audit) and the "
            "same second-factor decision. Without a second factor: the token pair. With one: `mfa_required` and a "
            "single-use `mfa_token` (5 minutes, bound to the user and `device_id`) for /auth/mfa/challenge and "
            "/auth/mfa/verify. Unknown email and wrong password get the same 401. After "
            "CAPTCHA_AFTER_FAILURES failures the answer is 429 `captcha_required` with a challenge in `captcha`."
        ),
        request=s.LoginSerializer,
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="LoginResult",
                    serializers=[s.TokenPairSerializer, s.MfaRequiredSerializer],
                    resource_type_field_name=None,
                ),
                description="The token pair, or mfa_required with an mfa_token when a second factor is needed.",
            ),
            400: E400,
            401: OpenApiResponse(s.ErrorSerializer, description="invalid_credentials (one generic message)"),
            403: OpenApiResponse(
                s.ErrorSerializer,
                description="email_unverified, login_denied (risk), mfa_enrolment_required, "
                "login_verification_required",
            ),
            429: OpenApiResponse(
                s.CaptchaRequiredSerializer, description="locked, rate_limited, throttled or captcha_required"
            ),
        },
        examples=[
            OpenApiExample(
                "mfa_required",
                value={
                    "mfa_required": True,
                    "mfa_token": "…",
                    "methods": ["totp", "sms", "recovery"],
                    "expires_in": 300,
                },
                response_only=True,
                status_codes=["200"],
            )
        ],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = s.login_data(request.data)
        if data is None:  # not plain strings the serializer accepts: its own answer
            serializer = s.LoginSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        req = _django(request)
        # DPoP (issue 18, accounts/dpop.py): under API_REQUIRE_DPOP no password is checked without a proof.
        accounts_dpop.token_request_jkt(req)
        check = account_services.password_check(
            request=req,
            email=data["email"],
            password=data["password"],
            captcha_payload=data.get("captcha") or None,
            channel="api",
            # The stages' rows for this login (the app's device) come with the user row.
            user_joins=pipeline.user_joins(channel="api", device_id=data.get("device_id") or ""),
        )
        if check.status in ("rate_limited", "locked"):
            detail = (
                "Too many failed attempts. Try again later."
                if check.status == "locked"
                else "Too many login attempts from your network. Try again later."
            )
            raise retry_after_error(check.status, detail, check.retry_after_seconds)
        if check.status == "captcha_required":
            raise APIError(
                status_code=429,
                code="captcha_required",
                detail="Solve the proof-of-work challenge and send it as `captcha` with your login.",
                extra={"captcha": security.captcha_challenge(), "captcha_error": check.captcha_error},
            )
        if check.status == "unverified":
            raise api_error(403, "email_unverified", "Verify your email address first; we sent you a link.")
        if not check.ok or check.user is None:
            raise api_error(401, "invalid_credentials", GENERIC_BAD_CREDENTIALS)
        attempt = pipeline.begin(
            req,
            user=check.user,
            channel="api",
            device_id=data.get("device_id") or "",
            device_label=data.get("device_name") or "",
            password=data["password"],
        )
        # A refusal of a stage (login_denied, mfa_enrolment_required, login_verification_required)
        # is a DomainError: the exception handler answers it.
        outcome = pipeline.run(attempt)
        if outcome.pause is not None:
            return Response(
                {
                    "mfa_required": True,
                    "mfa_token": outcome.mfa_token,
                    "methods": outcome.pause.methods,
                    "expires_in": settings.API_MFA_TOKEN_TTL_SECONDS,
                },
                status=status.HTTP_200_OK,
                headers={"Cache-Control": "no-store"},
            )
        assert outcome.login is not None
        return login_response(outcome.login)


# --- Refresh and logout ------------------------------------------------------------------------------


_REFRESH_MAX = int(getattr(s.RefreshSerializer().fields["refresh"], "max_length", None) or 200)


def _refresh_value(data: Any) -> str:
    """`refresh` of the body, as RefreshSerializer validates it. A plain well-formed token (a
    string, not blank once trimmed, within max_length, no NUL or surrogate characters) is taken
    at once: building the serializer (DRF deep-copies its fields per instance) was 8 % of a
    refresh. Anything else goes through the serializer, for its usual 400 with per-field errors."""
    value = data.get("refresh") if isinstance(data, dict) else None
    if isinstance(value, str):
        trimmed = value.strip()
        if (
            trimmed
            and len(trimmed) <= _REFRESH_MAX
            and "\x00" not in trimmed
            and not any("\ud800" <= char <= "\udfff" for char in trimmed)
        ):
            return trimmed
    serializer = s.RefreshSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return str(serializer.validated_data["refresh"])


class RefreshView(_AuthView):
    throttle_scope = "auth_refresh"

    @extend_schema(
        operation_id="auth_token_refresh",
        summary="Rotate the refresh token",
        description=(
            "Spends the refresh token and returns a new pair. Presenting a refresh token that was already used is "
            "treated as theft: 401 `token_reused`, and the whole login (every token, the newest included) is "
            "revoked at once and the user is emailed."
        ),
        request=s.RefreshSerializer,
        responses={
            200: s.TokenPairSerializer,
            400: E400,
            401: OpenApiResponse(
                s.ErrorSerializer, description="token_not_valid, token_expired, token_revoked, token_reused"
            ),
            429: E429,
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        raw = _refresh_value(request.data)
        # DPoP (issue 18, accounts/dpop.py): the proof of this request, "" without one (when allowed).
        jkt = accounts_dpop.token_request_jkt(_django(request))
        try:
            pair = services.refresh_rotate(raw=raw, dpop_jkt=jkt)
        except services.TokenRefused as exc:
            raise api_error(401, exc.code, exc.detail) from exc
        return tokens_response(pair)


class LogoutView(_AuthView):
    throttle_scope = "auth_logout"

    @extend_schema(
        operation_id="auth_logout",
        summary="Log out: revoke this login",
        description="Ends the login of the refresh token; its access tokens are refused from the next request.",
        request=s.RefreshSerializer,
        responses={204: None, 400: E400, 401: E401, 429: E429},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = s.RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.logout(raw=serializer.validated_data["refresh"])
        except services.TokenRefused as exc:
            raise api_error(401, exc.code, exc.detail) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- The signed-in user -------------------------------------------------------------------------------


@functools.cache
def _me_field_providers(paths: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(import_string(path) for path in paths)


class _UserView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedIPThrottle]
    throttle_scope = "auth_user"


class MeView(_UserView):
    # The values registered under "me" (core.cached; mfa.cache's factor fields) are read in the
    # request's one Redis round trip with the token's checks (accounts.api.authentication).
    prefetch_tags = ("me",)

    @extend_schema(
        operation_id="me",
        summary="The signed-in user",
        responses={200: s.MeSerializer, 401: E401, 429: E429},
        tags=["account"],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        body: dict[str, Any] = {"id": str(user.public_id), "email": user.email}
        # Other apps add their fields (mfa: the factors), named in settings.ACCOUNT_ME_FIELDS.
        for provider in _me_field_providers(tuple(settings.ACCOUNT_ME_FIELDS)):
            body.update(provider(user=user))
        return Response(body)


class SessionListView(_UserView):
    @extend_schema(
        operation_id="sessions_list",
        summary="Live web sessions and app logins of the user",
        responses={200: s.SessionSerializer(many=True), 401: E401, 429: E429},
        tags=["account"],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        current = str(getattr(request.auth, "sid", ""))
        rows = [
            {
                "id": str(row.id),
                "kind": row.kind,
                "device_name": row.device_name,
                "ip": row.ip,
                "country": row.country,
                "created_at": row.created_at,
                "last_seen_at": row.last_seen_at,
                "current": str(row.id) == current,
            }
            for row in live_sessions(user=user)
        ]
        return Response(s.SessionSerializer(rows, many=True).data)


class SessionDetailView(_UserView):
    @extend_schema(
        operation_id="sessions_end",
        summary="End one web session or app login at once",
        responses={204: None, 401: E401, 404: OpenApiResponse(s.ErrorSerializer, description="Not found or not yours")},
        tags=["account"],
    )
    def delete(self, request: Request, session_id: str) -> Response:
        user = request.user
        assert isinstance(user, User)
        try:
            services.session_end_for_user(user=user, session_id=str(uuid.UUID(str(session_id))))
        except (ValueError, UserSession.DoesNotExist) as exc:
            raise api_error(404, "not_found", "No such session.") from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- JWKS ------------------------------------------------------------------------------------------------


@require_GET
@cache_control(public=True, max_age=300)
def jwks_view(request: HttpRequest) -> JsonResponse:
    """GET /.well-known/jwks.json: the public keys that verify access tokens (current + previous)."""
    return JsonResponse(tokens.jwks())


class APIDocsView(SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar (no CDN), its script served as a file (strict CSP)."""

    template_name = "api/swagger_ui.html"
