"""Authentication API for the mobile app (see shared/API.md, "Authentication (mobile)").

Views validate, call one service and shape the answer; errors are core.api.APIError and come
out as {"detail", "code"} (+ "errors" on 400).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import login_flow, security, tokens
from accounts import services as account_services
from accounts.api import serializers as s
from accounts.api import services
from accounts.api.throttles import ScopedIPThrottle
from accounts.models import User, UserSession
from accounts.selectors import live_sessions
from core.api import APIError, api_error, retry_after_error
from mfa import services as mfa_services

try:  # the risk engine (new device / country, impossible travel, geo-fence)
    from risk import services as risk_services
except ImportError:  # pragma: no cover - risk not installed
    risk_services = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

E400 = OpenApiResponse(s.ValidationErrorSerializer, description="Bad input (per-field errors)")
E401 = OpenApiResponse(s.ErrorSerializer, description="Not authenticated, or a bad, expired or revoked token")
E429 = OpenApiResponse(s.RetryErrorSerializer, description="Throttled or locked out (Retry-After header)")
GENERIC_BAD_CREDENTIALS = "Email or password is not correct."


def _django(request: Request) -> HttpRequest:
    return request._request


def _tokens_response(pair: services.TokenPair) -> Response:
    response = Response(pair.as_response(), status=status.HTTP_200_OK)
    response["Cache-Control"] = "no-store"
    return response


def _risk_after_login(request: HttpRequest, *, user: User, amr: list[str], stored: dict[str, Any] | None) -> None:
    """Lets the risk engine remember the device and place and send its alerts; never fails the login."""
    if risk_services is None:
        return
    try:
        decision = None
        if stored:
            decision = risk_services.RiskDecision.from_dict(stored, user=user)
        else:
            decision = risk_services.pending_decision(request=request, user=user)
        if decision is not None:
            risk_services.login_succeeded(request=request, user=user, decision=decision, amr=amr)
    except Exception:  # the login has happened; a failing alert must not turn it into a 500
        logger.exception("risk bookkeeping after an API login failed")


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
        serializer = s.LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        req = _django(request)
        check = account_services.password_check(
            request=req,
            email=data["email"],
            password=data["password"],
            captcha_payload=data.get("captcha") or None,
            channel="api",
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
        user = check.user
        device_id = data.get("device_id") or ""
        device_label = data.get("device_name") or ""

        decision = None
        if risk_services is not None:
            decision = risk_services.evaluate_login(
                request=req, user=user, channel="api", device_id=device_id or None, device_name_hint=device_label
            )
        required, reasons = login_flow.second_factor_required(request=req, user=user, device_id=device_id or None)
        if "deny" in reasons or (decision is not None and decision.denied):
            message = decision.message if decision is not None else "This sign-in was refused."
            raise api_error(403, "login_denied", message)
        methods = [m for m in mfa_services.methods_for(user=user) if m in s.API_MFA_METHODS]
        if required:
            if not methods:
                if "policy" in reasons:
                    raise api_error(
                        403,
                        "mfa_enrolment_required",
                        "Your account needs a second factor. Set one up on the web first.",
                    )
                raise api_error(
                    403,
                    "login_verification_required",
                    "This sign-in needs extra verification. Sign in on the web once, or set up a second factor.",
                )
            token = services.mfa_pending_create(
                user=user,
                device_id=device_id,
                device_label=device_label,
                reasons=reasons,
                risk=decision.as_dict() if decision is not None else None,
            )
            return Response(
                {
                    "mfa_required": True,
                    "mfa_token": token,
                    "methods": methods,
                    "expires_in": settings.API_MFA_TOKEN_TTL_SECONDS,
                },
                status=status.HTTP_200_OK,
                headers={"Cache-Control": "no-store"},
            )
        amr = ["pwd"]
        pair = services.login_complete(
            request=req,
            user=user,
            amr=amr,
            device_id=device_id,
            device_label=device_label or (decision.device_name if decision is not None else ""),
            extra={"mfa_reasons": reasons} if reasons else None,
        )
        _risk_after_login(req, user=user, amr=amr, stored=None)
        return _tokens_response(pair)


# --- Second factor -------------------------------------------------------------------------------


def _pending_or_401(token: str, device_id: str | None) -> services.PendingLogin:
    pending = services.mfa_pending_get(raw=token, device_id=device_id)
    if pending is None:
        raise api_error(401, "mfa_token_invalid", "This login has expired or is not valid. Please log in again.")
    return pending


def _retry_seconds(retry_at: Any) -> int:
    return max(1, int((retry_at - timezone.now()).total_seconds()))


class MfaChallengeView(_AuthView):
    throttle_scope = "auth_mfa"

    @extend_schema(
        operation_id="auth_mfa_challenge",
        summary="Send a one-time code by SMS or email (or get passkey options) for a pending login",
        request=s.MfaChallengeSerializer,
        responses={
            200: OpenApiResponse(s.WebAuthnOptionsSerializer, description='method "webauthn": the passkey options'),
            202: OpenApiResponse(s.MfaChallengeResponseSerializer, description="sms/email: the code was sent"),
            400: OpenApiResponse(s.ValidationErrorSerializer, description="Bad input; method_unavailable"),
            401: OpenApiResponse(s.ErrorSerializer, description="mfa_token_invalid"),
            429: OpenApiResponse(s.RetryErrorSerializer, description="resend_too_soon, too_many_codes, mfa_locked"),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = s.MfaChallengeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        pending = _pending_or_401(data["mfa_token"], data.get("device_id"))
        user, method = pending.user, data["method"]
        if method not in mfa_services.methods_for(user=user):
            raise api_error(400, "method_unavailable", "This method is not available for your account.")
        if method == "webauthn":
            try:
                options = mfa_services.webauthn_begin_assertion(user=user, purpose="login", binding=pending.key)
            except mfa_services.SecondFactorLocked as exc:
                raise retry_after_error("mfa_locked", str(exc), _retry_seconds(exc.retry_at)) from exc
            except mfa_services.MFAError as exc:
                raise api_error(400, "method_unavailable", str(exc)) from exc
            services.mfa_pending_note_challenge(pending=pending, method=method)
            return Response({"method": "webauthn", "options": options}, status=status.HTTP_200_OK)
        try:
            challenge = mfa_services.code_send(user=user, method=method, purpose="login", binding=pending.key)
        except mfa_services.ResendTooSoon as exc:
            raise retry_after_error("resend_too_soon", str(exc), _retry_seconds(exc.retry_at)) from exc
        except mfa_services.TooManyCodes as exc:
            raise retry_after_error("too_many_codes", str(exc), _retry_seconds(exc.retry_at)) from exc
        except mfa_services.SecondFactorLocked as exc:
            raise retry_after_error("mfa_locked", str(exc), _retry_seconds(exc.retry_at)) from exc
        except mfa_services.MFAError as exc:
            raise api_error(400, "method_unavailable", str(exc)) from exc
        services.mfa_pending_note_challenge(pending=pending, method=method)
        return Response(
            {"sent_to": challenge.sent_to, "method": challenge.method, "expires_at": challenge.expires_at},
            status=status.HTTP_202_ACCEPTED,
        )


_SIX_DIGITS = re.compile(r"^\d{6}$")


def _verify_method(requested: str | None, code: str, pending: services.PendingLogin, methods: list[str]) -> str:
    if requested:
        return requested
    if not _SIX_DIGITS.match(code.replace(" ", "")) and "recovery" in methods:
        return "recovery"
    challenged = pending.data.get("challenged")
    if isinstance(challenged, str) and challenged in methods:
        return challenged
    return "totp" if "totp" in methods else (methods[0] if methods else "totp")


class MfaVerifyView(_AuthView):
    throttle_scope = "auth_mfa"

    @extend_schema(
        operation_id="auth_mfa_verify",
        summary="Complete a pending login with a TOTP, SMS, email or recovery code, or a passkey",
        description=(
            "`method` defaults to the method of the last challenge sent, else TOTP; a code that is not six digits "
            "is taken as a recovery code. The mfa_token is single use: after success, or after "
            "API_MFA_TOKEN_MAX_ATTEMPTS wrong codes, it is gone."
        ),
        request=s.MfaVerifySerializer,
        responses={
            200: s.TokenPairSerializer,
            400: OpenApiResponse(s.ValidationErrorSerializer, description="Bad input; method_unavailable"),
            401: OpenApiResponse(
                s.InvalidCodeSerializer,
                description="invalid_code (attempts_left), challenge_expired, mfa_token_invalid",
            ),
            429: OpenApiResponse(s.RetryErrorSerializer, description="mfa_locked (too many wrong codes), throttled"),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = s.MfaVerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        pending = _pending_or_401(data["mfa_token"], data.get("device_id"))
        user = pending.user
        methods = [m for m in mfa_services.methods_for(user=user) if m in s.API_MFA_METHODS]
        method = _verify_method(data.get("method"), data.get("code") or "", pending, methods)
        if method not in methods:
            raise api_error(400, "method_unavailable", "This method is not available for your account.")
        try:
            if method == "webauthn":
                amr = mfa_services.webauthn_finish_assertion(
                    user=user, credential=data["credential"], purpose="login", binding=pending.key
                )
            else:
                binding = pending.key if method in ("sms", "email") else ""
                amr = mfa_services.code_verify(
                    user=user, method=method, code=data["code"], purpose="login", binding=binding
                )
        except mfa_services.InvalidCode as exc:
            left = services.mfa_pending_failed(pending=pending)
            raise api_error(
                401, "invalid_code", "That code is not correct.", attempts_left=min(exc.attempts_left, left)
            ) from exc
        except mfa_services.ChallengeExpired as exc:
            services.mfa_pending_failed(pending=pending)
            raise api_error(401, "challenge_expired", str(exc)) from exc
        except mfa_services.SecondFactorLocked as exc:
            services.mfa_pending_consume(pending=pending)
            raise retry_after_error("mfa_locked", str(exc), _retry_seconds(exc.retry_at)) from exc
        except mfa_services.MFAError as exc:
            raise api_error(400, "method_unavailable", str(exc)) from exc
        if not services.mfa_pending_consume(pending=pending):
            raise api_error(401, "mfa_token_invalid", "This login has expired or is not valid. Please log in again.")
        req = _django(request)
        full_amr = ["pwd", amr]
        pair = services.login_complete(
            request=req,
            user=user,
            amr=full_amr,
            device_id=str(pending.data.get("device_id") or ""),
            device_label=str(pending.data.get("device_name") or ""),
            extra={"mfa_method": method, "mfa_reasons": list(pending.data.get("reasons") or [])},
        )
        _risk_after_login(req, user=user, amr=full_amr, stored=pending.data.get("risk"))
        return _tokens_response(pair)


# --- Refresh and logout ------------------------------------------------------------------------------


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
        serializer = s.RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            pair = services.refresh_rotate(raw=serializer.validated_data["refresh"])
        except services.TokenRefused as exc:
            raise api_error(401, exc.code, exc.detail) from exc
        return _tokens_response(pair)


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


class _UserView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedIPThrottle]
    throttle_scope = "auth_user"


class MeView(_UserView):
    @extend_schema(
        operation_id="me",
        summary="The signed-in user",
        responses={200: s.MeSerializer, 401: E401, 429: E429},
        tags=["account"],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        assert isinstance(user, User)
        return Response(
            {
                "id": str(user.public_id),
                "email": user.email,
                "mfa_methods": mfa_services.methods_for(user=user),
                "preferred_mfa_method": mfa_services.preferred_method(user=user),
            }
        )


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
