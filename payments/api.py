"""The Banking part of the JSON API (see shared/API.md): accounts, beneficiaries, payments, step-up.

Views parse the request and call one service; errors are {"detail", "code"} (+ "errors" per
field) with the status the service's exception carries. Another customer's object is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from payments import selectors, services

IDEMPOTENCY_KEY_MAX = 255

_ERROR = inline_serializer(
    name="PaymentsError",
    fields={
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False),
        "attempts_left": serializers.IntegerField(required=False),
    },
)
_ACCOUNT = inline_serializer(
    name="BankAccount",
    fields={
        "id": serializers.UUIDField(),
        "iban": serializers.CharField(),
        "name": serializers.CharField(),
        "currency": serializers.CharField(),
        "balance": serializers.CharField(help_text='Decimal string with two places, e.g. "10000.01"'),
    },
)
_BENEFICIARY = inline_serializer(
    name="Beneficiary",
    fields={
        "id": serializers.UUIDField(),
        "name": serializers.CharField(),
        "iban": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
    },
)
_STEP_UP = inline_serializer(
    name="PaymentStepUp",
    fields={
        "challenge_id": serializers.UUIDField(),
        "methods": serializers.ListField(child=serializers.CharField()),
        "expires_at": serializers.DateTimeField(),
        "attempts_left": serializers.IntegerField(),
        "reasons": serializers.ListField(child=serializers.CharField()),
    },
)
_PAYMENT = inline_serializer(
    name="Payment",
    fields={
        "id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=["pending_step_up", "completed", "refused", "expired"]),
        "from_account": serializers.UUIDField(),
        "beneficiary": serializers.UUIDField(allow_null=True),
        "to_iban": serializers.CharField(),
        "payee_name": serializers.CharField(),
        "amount": serializers.CharField(),
        "currency": serializers.CharField(),
        "reference": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "completed_at": serializers.DateTimeField(allow_null=True),
        "step_up": _STEP_UP,
        "refusal_reason": serializers.CharField(required=False),
    },
)
_PAYMENT_IN = inline_serializer(
    name="PaymentCreate",
    fields={
        "from_account": serializers.UUIDField(),
        "beneficiary": serializers.UUIDField(required=False),
        "to_iban": serializers.CharField(required=False),
        "payee_name": serializers.CharField(required=False),
        "amount": serializers.CharField(help_text='Decimal string, at most two decimals ("10.50"); floats are refused'),
        "currency": serializers.CharField(),
        "reference": serializers.CharField(required=False),
    },
)

_ACCOUNT_LIST: Any = serializers.ListSerializer(child=_ACCOUNT)
_BENEFICIARY_LIST: Any = serializers.ListSerializer(child=_BENEFICIARY)
_PAYMENT_LIST: Any = serializers.ListSerializer(child=_PAYMENT)


def error_response(
    detail: str,
    code: str,
    http_status: int,
    *,
    field: str | None = None,
    extra: dict[str, Any] | None = None,
    retry_at: datetime | None = None,
) -> Response:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if field:
        body["errors"] = {field: [detail]}
    body.update(extra or {})
    response = Response(body, status=http_status)
    if retry_at is not None:
        response["Retry-After"] = str(max(1, int((retry_at - timezone.now()).total_seconds())))
    return response


def _from_error(exc: services.PaymentError) -> Response:
    extra: dict[str, Any] = {}
    if isinstance(exc, services.StepUpInvalid):
        extra["attempts_left"] = exc.attempts_left
    retry_at = exc.retry_at if isinstance(exc, services.StepUpThrottled) else None
    return error_response(exc.message, exc.code, exc.status, field=exc.field, extra=extra, retry_at=retry_at)


def _body(request: Request) -> dict[str, Any] | Response:
    data = request.data
    if not isinstance(data, dict):
        return error_response("Send a JSON object.", "invalid_body", status.HTTP_400_BAD_REQUEST)
    return dict(data)


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


class BankingView(APIView):
    permission_classes = [IsAuthenticated]

    def handle_exception(self, exc: Exception) -> Response:
        """Every refusal of the payments services becomes the API's error body here, in one place."""
        if isinstance(exc, services.PaymentError):
            return _from_error(exc)
        return super().handle_exception(exc)


class AccountsView(BankingView):
    required_scopes = ["read:accounts"]  # provider tokens (idp.authentication)
    @extend_schema(summary="Your bank accounts", responses={200: _ACCOUNT_LIST}, tags=["banking"])
    def get(self, request: Request) -> Response:
        accounts = selectors.accounts_for_user(user=_user(request))
        return Response([selectors.account_representation(a) for a in accounts])


class BeneficiariesView(BankingView):
    required_scopes = {"GET": ["read:payments"], "POST": ["write:payments"]}
    @extend_schema(summary="Your saved beneficiaries", responses={200: _BENEFICIARY_LIST}, tags=["banking"])
    def get(self, request: Request) -> Response:
        items = selectors.beneficiaries_for_user(user=_user(request))
        return Response([selectors.beneficiary_representation(b) for b in items])

    @extend_schema(
        summary="Add a beneficiary (needs recent authentication)",
        description=(
            "Adding a payee needs proof that the customer is present. Either the access token belongs to a login "
            "(its `sid`) that started within REAUTH_MAX_AGE_SECONDS (default 300 s: password and second factor were "
            "proven then; refreshing tokens does not renew it), or the body carries a second-factor `code` "
            "(+ `method`: totp, or sms/email after "
            "`POST /api/v1/beneficiaries/challenge` with the same name and IBAN: that code is bound to them). "
            'Otherwise `403 {"code": "reauth_required"}`. The IBAN\'s check digits are verified.'
        ),
        request=inline_serializer(
            name="BeneficiaryCreate",
            fields={
                "name": serializers.CharField(),
                "iban": serializers.CharField(),
                "code": serializers.CharField(required=False),
                "method": serializers.ChoiceField(choices=["totp", "sms", "email"], required=False),
            },
        ),
        responses={201: _BENEFICIARY, 400: _ERROR, 403: _ERROR, 410: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request) -> Response:
        from mfa.reauth import ReauthRequired

        body = _body(request)
        if isinstance(body, Response):
            return body
        try:
            beneficiary = services.beneficiary_add(
                request=request,
                user=_user(request),
                name=str(body.get("name") or ""),
                iban=str(body.get("iban") or ""),
                channel="api",
                code=str(body.get("code") or ""),
                method=str(body.get("method") or ""),
            )
        except ReauthRequired:
            return error_response(
                "Adding a beneficiary needs a recent sign-in or a second-factor code (see the API docs).",
                "reauth_required",
                status.HTTP_403_FORBIDDEN,
            )
        return Response(selectors.beneficiary_representation(beneficiary), status=status.HTTP_201_CREATED)


class BeneficiaryChallengeView(BankingView):
    required_scopes = {"POST": ["write:payments"]}
    @extend_schema(
        summary="Send a code bound to a beneficiary about to be added",
        request=inline_serializer(
            name="BeneficiaryChallenge",
            fields={
                "method": serializers.ChoiceField(choices=["sms", "email"]),
                "name": serializers.CharField(),
                "iban": serializers.CharField(),
            },
        ),
        responses={202: OpenApiTypes.OBJECT, 400: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        if isinstance(body, Response):
            return body
        challenge = services.beneficiary_code_send(
            user=_user(request),
            name=str(body.get("name") or ""),
            iban=str(body.get("iban") or ""),
            method=str(body.get("method") or ""),
        )
        return Response(
            {"sent_to": challenge.sent_to, "expires_at": selectors.iso(challenge.expires_at)},
            status=status.HTTP_202_ACCEPTED,
        )


class PaymentsView(BankingView):
    required_scopes = {"GET": ["read:payments"], "POST": ["write:payments"]}
    required_acr = {"POST": "urn:bank-portal:acr:mfa"}  # RFC 9470 step-up for provider tokens
    @extend_schema(
        summary="Your payments, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=["pending_step_up", "completed", "refused", "expired"]),
            OpenApiParameter("limit", int, description="1-100, default 50"),
        ],
        responses={200: _PAYMENT_LIST},
        tags=["banking"],
    )
    def get(self, request: Request) -> Response:
        payments = selectors.payments_for_user(user=_user(request))
        wanted = request.query_params.get("status")
        if wanted:
            payments = payments.filter(status=wanted)
        try:
            limit = min(max(int(request.query_params.get("limit", "50")), 1), 100)
        except ValueError:
            return error_response("limit must be a number from 1 to 100.", "invalid", 400, field="limit")
        return Response([selectors.payment_representation(p) for p in payments[:limit]])

    @extend_schema(
        summary="Make a payment",
        description=(
            "Requires the `Idempotency-Key` header (1-255 characters). The same key with the same body returns the "
            "first response again (201 or 202); with another body `409 idempotency_conflict`. Refusals (4xx) are "
            "not remembered, so a retry with the same key after fixing the cause is processed. "
            "Give `beneficiary` (a saved one) or `to_iban` (+ optional `payee_name`). At or below the step-up "
            "threshold (STEP_UP_THRESHOLD, default 10000.00) and not unusual: `201` completed. Above it, or unusual "
            "(over 5x the account's typical payment, or the first payment to a beneficiary added in the last 24 h): "
            "`202 pending_step_up`; confirm with a second factor within 5 minutes. A source account that is not "
            "yours is `404`."
        ),
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
        request=_PAYMENT_IN,
        responses={
            201: _PAYMENT,
            202: _PAYMENT,
            400: _ERROR,
            403: _ERROR,
            404: _ERROR,
            409: _ERROR,
        },
        examples=[
            OpenApiExample(
                "To an IBAN",
                request_only=True,
                value={
                    "from_account": "6f1c1e0e-8f0c-4a4e-9a39-0d2f1d7f6a11",
                    "to_iban": "DE89370400440532013000",
                    "payee_name": "Jane Doe",
                    "amount": "15000.00",
                    "currency": "EUR",
                    "reference": "Invoice 42",
                },
            )
        ],
        tags=["banking"],
    )
    def post(self, request: Request) -> Response:
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key:
            return error_response(
                "The Idempotency-Key header is required.", "idempotency_key_required", status.HTTP_400_BAD_REQUEST
            )
        if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
            return error_response(
                "The Idempotency-Key must be 1 to 255 printable characters.",
                "invalid_idempotency_key",
                status.HTTP_400_BAD_REQUEST,
            )
        body = _body(request)
        if isinstance(body, Response):
            return body
        outcome = services.payment_create(
            user=_user(request),
            from_account=body.get("from_account"),
            amount=body.get("amount"),
            currency=body.get("currency"),
            beneficiary=body.get("beneficiary"),
            to_iban=body.get("to_iban"),
            payee_name=body.get("payee_name") or "",
            reference=body.get("reference") or "",
            channel="api",
            idempotency_key=key,
            body_hash=services.request_hash(body),
        )
        response = Response(outcome.body, status=outcome.status_code)
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


def _payment_or_404(request: Request, payment_id: Any) -> Any:
    try:
        return selectors.payment_for_user(user=_user(request), payment_id=payment_id)
    except Http404:
        return None


class PaymentDetailView(BankingView):
    required_scopes = ["read:payments"]
    @extend_schema(summary="One of your payments", responses={200: _PAYMENT, 404: _ERROR}, tags=["banking"])
    def get(self, request: Request, payment_id: str) -> Response:
        payment = _payment_or_404(request, payment_id)
        if payment is None:
            return error_response("Payment not found.", "not_found", status.HTTP_404_NOT_FOUND)
        return Response(selectors.payment_representation(payment))


class PaymentChallengeView(BankingView):
    required_scopes = {"POST": ["write:payments"]}
    @extend_schema(
        summary="Send a step-up code for a pending payment",
        description=(
            "`sms` or `email`: a code bound to the payment's digest (id, source account, payee IBAN, amount, "
            "currency) is sent; the message states amount and payee. `webauthn`: returns the assertion options "
            "(`options`) whose challenge carries the digest. 410 when the payment can no longer be confirmed."
        ),
        request=inline_serializer(
            name="PaymentStepUpChallenge",
            fields={"method": serializers.ChoiceField(choices=["sms", "email", "webauthn"])},
        ),
        responses={202: OpenApiTypes.OBJECT, 400: _ERROR, 404: _ERROR, 410: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, payment_id: str) -> Response:
        body = _body(request)
        if isinstance(body, Response):
            return body
        result = services.payment_step_up_send(
            user=_user(request), payment_id=payment_id, method=str(body.get("method") or "")
        )
        if isinstance(result.get("expires_at"), datetime):
            result["expires_at"] = selectors.iso(result["expires_at"])
        return Response(result, status=status.HTTP_202_ACCEPTED)


class PaymentConfirmView(BankingView):
    required_scopes = {"POST": ["write:payments"]}
    @extend_schema(
        summary="Confirm a pending payment with a second factor",
        description=(
            "`code` + `method` (totp, sms, email; default: sms/email if a code was sent, else totp) or "
            "`method: webauthn` + `credential`. The digest is recomputed from the stored payment: if the payment "
            "changed, it is refused (`410 payment_changed`). Wrong code: `400 invalid_code` with `attempts_left`; "
            "after 3 wrong codes or 5 minutes the payment is refused / expired: `410`. Funds are checked again."
        ),
        request=inline_serializer(
            name="PaymentConfirm",
            fields={
                "code": serializers.CharField(required=False),
                "method": serializers.ChoiceField(choices=["totp", "sms", "email", "webauthn"], required=False),
                "credential": serializers.DictField(required=False),
            },
        ),
        responses={200: _PAYMENT, 400: _ERROR, 404: _ERROR, 410: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, payment_id: str) -> Response:
        body = _body(request)
        if isinstance(body, Response):
            return body
        user = _user(request)
        method = str(body.get("method") or "").strip().lower() or services.default_confirm_method(
            user=user, payment_id=payment_id
        )
        payment = services.payment_confirm(
            user=user,
            payment_id=payment_id,
            method=method,
            code=str(body.get("code") or ""),
            credential=body.get("credential"),
        )
        return Response(selectors.payment_representation(payment))
