"""The Banking part of the JSON API (see shared/API.md): accounts, beneficiaries, payments, step-up.

Views parse the request and call one service. Refusals are the services' `PaymentError`s
(core.errors.DomainError), mapped to {"detail", "code"} (+ "errors" per field) with their status
in one place, core.api.exception_handler. Another customer's object is a 404. Query parameters
pass a filter serializer before they reach a query: bad values are a 400.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authn import ReauthRequired
from accounts.models import User
from payments import cache as payments_cache
from payments import selectors, services
from payments.models import Payment, StandingOrder
from payments.sca import EXEMPTIONS

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
        "trusted": serializers.BooleanField(help_text="Trusted with SCA (RTS Art. 13): payments to it skip SCA"),
        "trusted_at": serializers.DateTimeField(allow_null=True),
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
        "sca": inline_serializer(
            name="PaymentSca",
            fields={
                "required": serializers.BooleanField(),
                "exemption": serializers.ChoiceField(choices=list(EXEMPTIONS), allow_null=True),
                "article": serializers.CharField(allow_null=True),
            },
        ),
        "standing_order": serializers.UUIDField(required=False),
        "fraud_reported_at": serializers.DateTimeField(required=False),
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


class PaymentFilter(serializers.Serializer):  # type: ignore[type-arg]
    """The query parameters of GET /api/v1/payments, validated before any reaches a query."""

    status = serializers.ChoiceField(choices=Payment.Status.values, required=False)
    exemption = serializers.ChoiceField(choices=list(EXEMPTIONS), required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=50)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown query parameter."] for name in unknown})
        return attrs


_ACCOUNT_LIST: Any = serializers.ListSerializer(child=_ACCOUNT)
_BENEFICIARY_LIST: Any = serializers.ListSerializer(child=_BENEFICIARY)
_PAYMENT_LIST: Any = serializers.ListSerializer(child=_PAYMENT)


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise services.PaymentError("Send a JSON object.", code="invalid_body")
    return dict(data)


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


class BankingView(APIView):
    permission_classes = [IsAuthenticated]


def _pending_body(pending: services.ConfirmationPending) -> dict[str, Any]:
    body: dict[str, Any] = {
        "challenge_id": pending.challenge_id,
        "methods": pending.methods,
        "expires_at": selectors.iso(pending.expires_at),
    }
    if pending.sent_to:
        body["sent_to"] = pending.sent_to
    if pending.email_fallback:
        body["add_factor"] = selectors.add_factor_invitation()
    return body


class AccountsView(BankingView):
    required_scopes = ["read:accounts"]  # provider tokens (idp.authentication)
    # The owner's cached list (payments.cache) is read in the request's one Redis round trip with
    # the token's checks (accounts.api.authentication.prefetch): a warm read runs no SQL.
    prefetch_tags = ("accounts",)

    @extend_schema(summary="Your bank accounts", responses={200: _ACCOUNT_LIST}, tags=["banking"])
    def get(self, request: Request) -> Response:
        return Response(payments_cache.account_list(_user(request).pk))


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
        body = _body(request)
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
        except ReauthRequired as exc:
            raise ReauthRequired(
                "Adding a beneficiary needs a recent sign-in or a second-factor code (see the API docs)."
            ) from exc
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
            OpenApiParameter("exemption", str, enum=list(EXEMPTIONS)),
            OpenApiParameter("limit", int, description="1-100, default 50"),
        ],
        responses={200: _PAYMENT_LIST},
        tags=["banking"],
    )
    def get(self, request: Request) -> Response:
        query = PaymentFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        payments = selectors.payments_for_user(user=_user(request))
        if wanted.get("status"):
            payments = payments.filter(status=wanted["status"])
        if wanted.get("exemption"):
            payments = payments.filter(sca_exemption=wanted["exemption"])
        return Response([selectors.payment_representation(p) for p in payments[: wanted["limit"]]])

    @extend_schema(
        summary="Make a payment",
        description=(
            "Requires the `Idempotency-Key` header (1-255 characters). The same key with the same body returns the "
            "first response again (201 or 202); with another body `409 idempotency_conflict`. Refusals (4xx) are "
            "not remembered, so a retry with the same key after fixing the cause is processed. "
            "Give `beneficiary` (a saved one) or `to_iban` (+ optional `payee_name`). Whether strong customer "
            "authentication applies is decided once (payments/sca.py) and stated in `sca` "
            "(`required`, `exemption`, `article`): without it `201` completed; with it `202 pending_step_up`, "
            "confirm with a second factor within 5 minutes. Default profile: SCA above STEP_UP_THRESHOLD "
            "(10000.00) counting the payments made without SCA in the last 24 h, or when unusual; "
            "`SECURITY_PROFILE=psd2`: SCA unless an RTS exemption applies (own accounts, trusted beneficiary, "
            "standing order, low value, transaction risk analysis). A customer with no factor gets "
            '`"methods": ["email"]` and `step_up.add_factor` unless the deployment forbids it '
            "(`403 second_factor_required`). A source account that is not yours is `404`."
        ),
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "X-Device-Id",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="The device_id the app sent at login: a device known for a day lowers the risk score",
            ),
        ],
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
            raise services.PaymentError("The Idempotency-Key header is required.", code="idempotency_key_required")
        if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
            raise services.PaymentError(
                "The Idempotency-Key must be 1 to 255 printable characters.", code="invalid_idempotency_key"
            )
        body = _body(request)
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
            payer=services.payer_context(request=request, channel="api"),
        )
        code = status.HTTP_202_ACCEPTED if outcome.needs_step_up else status.HTTP_201_CREATED
        response = Response(outcome.snapshot, status=code)
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
            raise services.PaymentNotFound("Payment not found.", code="not_found")
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


_CONFIRM_IN = inline_serializer(
    name="CodeConfirm",
    fields={
        "code": serializers.CharField(),
        "method": serializers.ChoiceField(choices=["totp", "sms", "email"], required=False),
    },
)


class BeneficiaryTrustView(BankingView):
    required_scopes = {"POST": ["write:payments"], "DELETE": ["write:payments"]}
    required_acr = {"POST": "urn:bank-portal:acr:mfa"}

    @extend_schema(
        summary="Trust a beneficiary (RTS Art. 13): needs a recent sign-in, then a second factor",
        description=(
            "Needs a login (or re-authentication) within REAUTH_MAX_AGE_SECONDS, else `403 reauth_required`. "
            "Answers `202` with `step_up` (challenge_id, methods, expires_at); with `method` sms/email a code bound "
            "to this payee is sent now. Confirm with `POST .../trust/confirm`. Payments to a trusted beneficiary "
            "skip SCA up to STEP_UP_THRESHOLD; changing its IBAN drops the trust."
        ),
        request=inline_serializer(
            name="BeneficiaryTrust",
            fields={"method": serializers.ChoiceField(choices=["sms", "email"], required=False)},
        ),
        responses={202: OpenApiTypes.OBJECT, 403: _ERROR, 404: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, beneficiary_id: str) -> Response:
        body = _body(request) if request.data else {}
        pending = services.beneficiary_trust_begin(
            request=request,
            user=_user(request),
            beneficiary_id=beneficiary_id,
            method=str(body.get("method") or ""),
        )
        return Response(
            {"beneficiary": beneficiary_id, "trusted": False, "step_up": _pending_body(pending)},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="Stop trusting a beneficiary (no second factor needed)",
        responses={200: _BENEFICIARY, 404: _ERROR},
        tags=["banking"],
    )
    def delete(self, request: Request, beneficiary_id: str) -> Response:
        beneficiary = services.beneficiary_untrust(user=_user(request), beneficiary_id=beneficiary_id)
        return Response(selectors.beneficiary_representation(beneficiary))


class BeneficiaryTrustChallengeView(BankingView):
    required_scopes = {"POST": ["write:payments"]}

    @extend_schema(
        summary="Send (again) a code bound to trusting this beneficiary",
        request=inline_serializer(
            name="BeneficiaryTrustChallenge", fields={"method": serializers.ChoiceField(choices=["sms", "email"])}
        ),
        responses={202: OpenApiTypes.OBJECT, 400: _ERROR, 404: _ERROR, 410: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, beneficiary_id: str) -> Response:
        body = _body(request)
        challenge = services.beneficiary_trust_send(
            user=_user(request), beneficiary_id=beneficiary_id, method=str(body.get("method") or "")
        )
        return Response(
            {"sent_to": challenge.sent_to, "expires_at": selectors.iso(challenge.expires_at)},
            status=status.HTTP_202_ACCEPTED,
        )


class BeneficiaryTrustConfirmView(BankingView):
    required_scopes = {"POST": ["write:payments"]}

    @extend_schema(
        summary="Confirm trusting a beneficiary with a second factor bound to it",
        request=_CONFIRM_IN,
        responses={200: _BENEFICIARY, 400: _ERROR, 404: _ERROR, 410: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, beneficiary_id: str) -> Response:
        body = _body(request)
        user = _user(request)
        method = str(body.get("method") or "").strip().lower() or services.default_trust_method(
            user=user, beneficiary_id=beneficiary_id
        )
        beneficiary = services.beneficiary_trust_confirm(
            user=user, beneficiary_id=beneficiary_id, method=method, code=str(body.get("code") or "")
        )
        return Response(selectors.beneficiary_representation(beneficiary))


class PaymentFraudReportView(BankingView):
    required_scopes = {"POST": ["write:payments"]}

    @extend_schema(
        summary="Report a completed payment as not made by you (this wasn't me)",
        description="Counts in the fraud rate (RTS Art. 19) that decides the transaction-risk-analysis exemption.",
        request=inline_serializer(
            name="PaymentFraudReport", fields={"reason": serializers.CharField(required=False, max_length=200)}
        ),
        responses={200: _PAYMENT, 400: _ERROR, 404: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, payment_id: str) -> Response:
        body = _body(request) if request.data else {}
        reason = " ".join(str(body.get("reason") or "").split())[:200]
        if any(not ch.isprintable() for ch in reason):
            raise services.PaymentError("Use printable characters only.", code="invalid_reason", field="reason")
        payment = services.payment_report_fraud(user=_user(request), payment_id=payment_id, reason=reason)
        return Response(selectors.payment_representation(payment))


_ORDER_IN = inline_serializer(
    name="StandingOrderCreate",
    fields={
        "from_account": serializers.UUIDField(),
        "beneficiary": serializers.UUIDField(required=False),
        "to_iban": serializers.CharField(required=False),
        "payee_name": serializers.CharField(required=False),
        "amount": serializers.CharField(),
        "currency": serializers.CharField(),
        "frequency": serializers.ChoiceField(choices=StandingOrder.Frequency.values),
        "reference": serializers.CharField(required=False),
    },
)


_STANDING_ORDER = inline_serializer(
    name="StandingOrder",
    fields={
        "id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=StandingOrder.Status.values),
        "from_account": serializers.UUIDField(),
        "beneficiary": serializers.UUIDField(allow_null=True),
        "to_iban": serializers.CharField(),
        "payee_name": serializers.CharField(),
        "amount": serializers.CharField(),
        "currency": serializers.CharField(),
        "reference": serializers.CharField(),
        "frequency": serializers.ChoiceField(choices=StandingOrder.Frequency.values),
        "next_run_at": serializers.DateTimeField(allow_null=True),
        "executions": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "sca": serializers.DictField(),
        "step_up": serializers.DictField(required=False),
    },
)
_STANDING_ORDER_LIST: Any = serializers.ListSerializer(child=_STANDING_ORDER)


def _order_body(order: StandingOrder, pending: services.ConfirmationPending | None = None) -> dict[str, Any]:
    body = selectors.standing_order_representation(order)
    if pending is not None:
        body["step_up"] = _pending_body(pending)
    return body


class StandingOrdersView(BankingView):
    required_scopes = {"GET": ["read:payments"], "POST": ["write:payments"]}
    required_acr = {"POST": "urn:bank-portal:acr:mfa"}

    @extend_schema(summary="Your standing orders", responses={200: _STANDING_ORDER_LIST}, tags=["banking"])
    def get(self, request: Request) -> Response:
        orders = selectors.standing_orders_for_user(user=_user(request))
        return Response([selectors.standing_order_representation(o) for o in orders])

    @extend_schema(
        summary="Create a standing order (RTS Art. 14): SCA now, later executions without",
        description=(
            "`202 pending_sca` with `step_up`; confirm with `POST /api/v1/standing-orders/{id}/confirm` (a code "
            "bound to account, payee, amount, currency and frequency). The first execution runs at that "
            "confirmation; later ones run on schedule without SCA while the terms stay the same."
        ),
        request=_ORDER_IN,
        responses={202: _STANDING_ORDER, 400: _ERROR, 403: _ERROR, 404: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        order, pending = services.standing_order_create(
            user=_user(request),
            from_account=body.get("from_account"),
            amount=body.get("amount"),
            currency=body.get("currency"),
            frequency=body.get("frequency"),
            beneficiary=body.get("beneficiary"),
            to_iban=body.get("to_iban"),
            payee_name=body.get("payee_name") or "",
            reference=body.get("reference") or "",
        )
        return Response(_order_body(order, pending), status=status.HTTP_202_ACCEPTED)


class StandingOrderDetailView(BankingView):
    required_scopes = {"GET": ["read:payments"], "PATCH": ["write:payments"], "DELETE": ["write:payments"]}
    required_acr = {"PATCH": "urn:bank-portal:acr:mfa"}

    @extend_schema(
        summary="One of your standing orders", responses={200: _STANDING_ORDER, 404: _ERROR}, tags=["banking"]
    )
    def get(self, request: Request, order_id: str) -> Response:
        try:
            order = selectors.standing_order_for_user(user=_user(request), order_id=order_id)
        except Http404 as exc:
            raise services.PaymentNotFound("Standing order not found.", code="not_found") from exc
        return Response(_order_body(order))

    @extend_schema(
        summary="Change a standing order's amount, frequency or reference: SCA again",
        request=inline_serializer(
            name="StandingOrderChange",
            fields={
                "amount": serializers.CharField(required=False),
                "frequency": serializers.ChoiceField(choices=StandingOrder.Frequency.values, required=False),
                "reference": serializers.CharField(required=False),
            },
        ),
        responses={202: _STANDING_ORDER, 400: _ERROR, 404: _ERROR, 410: _ERROR},
        tags=["banking"],
    )
    def patch(self, request: Request, order_id: str) -> Response:
        body = _body(request)
        order, pending = services.standing_order_change(
            user=_user(request),
            order_id=order_id,
            amount=body.get("amount"),
            frequency=body.get("frequency"),
            reference=body.get("reference"),
        )
        return Response(_order_body(order, pending), status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Cancel a standing order", responses={200: _STANDING_ORDER, 404: _ERROR}, tags=["banking"])
    def delete(self, request: Request, order_id: str) -> Response:
        order = services.standing_order_cancel(user=_user(request), order_id=order_id)
        return Response(_order_body(order))


class StandingOrderChallengeView(BankingView):
    required_scopes = {"POST": ["write:payments"]}

    @extend_schema(
        summary="Send a code bound to a standing order waiting for confirmation",
        request=inline_serializer(
            name="StandingOrderChallenge", fields={"method": serializers.ChoiceField(choices=["sms", "email"])}
        ),
        responses={202: OpenApiTypes.OBJECT, 400: _ERROR, 404: _ERROR, 410: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, order_id: str) -> Response:
        body = _body(request)
        challenge = services.standing_order_send(
            user=_user(request), order_id=order_id, method=str(body.get("method") or "")
        )
        return Response(
            {"sent_to": challenge.sent_to, "expires_at": selectors.iso(challenge.expires_at)},
            status=status.HTTP_202_ACCEPTED,
        )


class StandingOrderConfirmView(BankingView):
    required_scopes = {"POST": ["write:payments"]}

    @extend_schema(
        summary="Confirm a new or changed standing order with a second factor",
        request=_CONFIRM_IN,
        responses={200: _STANDING_ORDER, 400: _ERROR, 404: _ERROR, 410: _ERROR, 429: _ERROR},
        tags=["banking"],
    )
    def post(self, request: Request, order_id: str) -> Response:
        body = _body(request)
        user = _user(request)
        method = str(body.get("method") or "").strip().lower() or services.default_order_method(
            user=user, order_id=order_id
        )
        order = services.standing_order_confirm(
            user=user, order_id=order_id, method=method, code=str(body.get("code") or "")
        )
        return Response(_order_body(order))
