"""The mobile API's second step of a login: /api/v1/auth/mfa/challenge and /verify.

The attempt paused by mfa.stages.SecondFactorStage lives in the pipeline's token store under the
`mfa_token`; a right answer resumes it (accounts.pipeline.resume), which runs the remaining
stages and finishes the login exactly as on the web. Refusals are DomainErrors: the API's
exception handler shapes them.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import dpop as accounts_dpop
from accounts import pipeline
from accounts.api import serializers as s
from accounts.api.responses import login_response
from accounts.api.throttles import ScopedIPThrottle
from accounts.pipeline import LoginAttempt
from core.api import api_error
from mfa import services
from mfa.stages import SecondFactorStage, code_purpose, prime


class MfaTokenInvalid(pipeline.LoginExpired):
    code = "mfa_token_invalid"
    default_message = "This login has expired or is not valid. Please log in again."


def _paused(request: Request, token: str, device_id: str | None) -> LoginAttempt:
    attempt = pipeline.pending_api(request._request, mfa_token=token, device_id=device_id)
    if attempt is None or attempt.waiting.get("stage") != SecondFactorStage.key:
        raise MfaTokenInvalid()
    return prime(attempt)


def _methods(attempt: LoginAttempt) -> list[str]:
    return list(attempt.waiting.get("methods") or [])


class _AuthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedIPThrottle]
    throttle_scope = "auth_mfa"


class MfaChallengeView(_AuthView):
    @extend_schema(
        operation_id="auth_mfa_challenge",
        summary="Send a one-time code by SMS or email (or get passkey options) for a pending login",
        description=(
            'With `"methods": ["email"]` (a risky login of a customer with no factor), the code goes to the '
            "verified email address of the account."
        ),
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
        attempt = _paused(request, data["mfa_token"], data.get("device_id"))
        method = data["method"]
        if method not in _methods(attempt):
            raise api_error(400, "method_unavailable", "This method is not available for your account.")
        if method == "webauthn":
            options = services.webauthn_begin_assertion(user=attempt.user, purpose="login", binding=attempt.binding)
            return Response({"method": "webauthn", "options": options}, status=status.HTTP_200_OK)
        challenge = services.code_send(
            user=attempt.user, method=method, purpose=code_purpose(attempt, method), binding=attempt.binding
        )
        attempt.waiting["challenged"] = method
        pipeline.pending_update(attempt)
        return Response(
            {"sent_to": challenge.sent_to, "method": challenge.method, "expires_at": challenge.expires_at},
            status=status.HTTP_202_ACCEPTED,
        )


_SIX_DIGITS = re.compile(r"^\d{6}$")


def _verify_method(requested: str | None, code: str, attempt: LoginAttempt) -> str:
    methods = _methods(attempt)
    if requested:
        return requested
    if not _SIX_DIGITS.match(code.replace(" ", "")) and "recovery" in methods:
        return "recovery"
    challenged = attempt.waiting.get("challenged")
    if isinstance(challenged, str) and challenged in methods:
        return challenged
    return "totp" if "totp" in methods else (methods[0] if methods else "totp")


class MfaVerifyView(_AuthView):
    @staticmethod
    def _verify(attempt: LoginAttempt, method: str, data: dict[str, Any]) -> str:
        if method == "webauthn":
            return services.webauthn_finish_assertion(
                user=attempt.user, credential=data["credential"], purpose="login", binding=attempt.binding
            )
        return services.code_verify(
            user=attempt.user,
            method=method,
            code=data["code"],
            purpose=code_purpose(attempt, method),
            binding=attempt.binding if method in services.CODE_METHODS else "",
        )

    @extend_schema(
        operation_id="auth_mfa_verify",
        summary="Complete a pending login with a TOTP, SMS, email or recovery code, or a passkey",
        description=(
            "`method` defaults to the method of the last challenge sent, else TOTP; a code that is not six digits "
            "is taken as a recovery code. The mfa_token is single use: after success, or after "
            "API_MFA_TOKEN_MAX_ATTEMPTS wrong codes (counted atomically), it is gone."
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
        # DPoP (issue 18): the proof is checked before the code, so a refusal spends nothing.
        accounts_dpop.token_request_jkt(request._request)
        attempt = _paused(request, data["mfa_token"], data.get("device_id"))
        method = _verify_method(data.get("method"), data.get("code") or "", attempt)
        if method not in _methods(attempt):
            raise api_error(400, "method_unavailable", "This method is not available for your account.")
        left = pipeline.attempt_try(attempt)  # counted before the answer is read
        # One transaction for the check and the login it completes; a refusal is caught inside it,
        # so the failure it counted commits.
        with transaction.atomic():
            try:
                amr = self._verify(attempt, method, data)
            except services.InvalidCode as exc:
                refusal: Exception | None = api_error(
                    401, "invalid_code", "That code is not correct.", attempts_left=min(exc.attempts_left, left)
                )
            except services.SecondFactorLocked as exc:
                pipeline.store_for(attempt).consume(attempt)
                refusal = exc
            except services.MFAError as exc:
                refusal = exc
            else:
                try:
                    outcome = pipeline.resume(
                        attempt, stage_key=SecondFactorStage.key, amr=amr, details={"mfa_method": method}
                    )
                except pipeline.LoginExpired:
                    refusal = MfaTokenInvalid()
                else:
                    refusal = MfaTokenInvalid() if outcome.login is None else None
        if refusal is not None:
            raise refusal
        assert outcome.login is not None
        return login_response(outcome.login)
