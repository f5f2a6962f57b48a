"""Web pages: new payment, confirmation (step-up), payment detail and history, statements,
beneficiaries. Each view validates a form and calls one service."""

from __future__ import annotations

import secrets
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.forms import ChoiceField
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.authn import ReauthRequired, reauth_redirect, reauth_required, reauth_url, session_auth
from accounts.models import User
from audit.selectors import events_for_user
from core.http import json_body
from payments import selectors, services
from payments.forms import BeneficiaryForm, ConfirmCodeForm, FraudReportForm, PaymentForm, StandingOrderForm
from payments.models import Beneficiary, Payment, StandingOrder

FORM_SALT = "payments.new-payment-form"
FORM_MAX_AGE = 60 * 60


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _account_information(view: Any) -> Any:
    """RTS Art. 10 under SECURITY_PROFILE=psd2: balances and the last SCA_ACCOUNT_ACCESS_DAYS of
    payments need SCA within that many days; older history needs a second-factor session.
    The view gets `history_since` (None: everything)."""
    from functools import wraps

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if str(settings.SECURITY_PROFILE) != "psd2":
            return view(request, *args, history_since=None, **kwargs)
        user = _user(request)
        auth = session_auth(request)
        if auth is not None and auth.level == "mfa":
            services.account_access_sca_record(user=user, auth_time=auth.auth_time)
            return view(request, *args, history_since=None, **kwargs)
        if selectors.account_access_sca_due(user=user):
            return redirect(reauth_url(next_url=request.get_full_path(), level="mfa"))
        return view(request, *args, history_since=selectors.history_since(), **kwargs)

    return wrapper


def _history_context(request: HttpRequest, history_since: Any) -> dict[str, Any]:
    return {
        "history_since": history_since,
        "older_url": reauth_url(next_url=request.get_full_path(), level="mfa") if history_since else "",
    }


def _new_submission(user: User) -> str:
    """A signed one-time token for one payment form: it becomes the payment's idempotency key."""
    return signing.dumps({"u": str(user.public_id), "n": secrets.token_urlsafe(18)}, salt=FORM_SALT)


def _submission_key(user: User, token: str) -> str | None:
    try:
        data = signing.loads(token, salt=FORM_SALT, max_age=FORM_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != str(user.public_id) or not data.get("n"):
        return None
    return f"web:{data['n']}"


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def payment_new_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method == "POST":
        form = PaymentForm(request.POST, user=user)
        if form.is_valid():
            data = form.cleaned_data
            key = _submission_key(user, data["submission"])
            if key is None:
                form.add_error(None, "This form has expired. Please check the details and send it again.")
            else:
                fields = {k: data[k] for k in ("from_account", "beneficiary", "to_iban", "payee_name", "amount")}
                fields["reference"] = data["reference"]
                try:
                    account = services.own_account(user=user, account_id=data["from_account"])
                    outcome = services.payment_create(
                        user=user,
                        from_account=data["from_account"],
                        amount=data["amount"],
                        currency=account.currency,
                        beneficiary=data["beneficiary"] or None,
                        to_iban=data["to_iban"] or None,
                        payee_name=data["payee_name"],
                        reference=data["reference"],
                        channel="web",
                        idempotency_key=key,
                        body_hash=services.request_hash(fields),
                        payer=services.payer_context(request=request, channel="web"),
                    )
                except services.PaymentError as exc:
                    field = exc.field if exc.field in form.fields else None
                    form.add_error(field, exc.message)
                else:
                    payment = outcome.payment
                    if outcome.replayed:
                        messages.info(request, "This payment was already submitted; it was not sent twice.")
                    if payment.status == Payment.Status.PENDING_STEP_UP:
                        return redirect("payments:confirm", payment_id=payment.id)
                    if not outcome.replayed:
                        messages.success(
                            request, f"Payment of {payment.amount} {payment.currency} sent. {payment.sca_text}."
                        )
                    return redirect("payments:detail", payment_id=payment.id)
        # a fresh one-time token for the corrected form
        fresh = request.POST.copy()
        fresh["submission"] = _new_submission(user)
        form.data = fresh
    else:
        initial: dict[str, Any] = {"submission": _new_submission(user)}
        if request.GET.get("beneficiary"):
            initial["beneficiary"] = request.GET["beneficiary"]
        if request.GET.get("from"):
            initial["from_account"] = request.GET["from"]
        form = PaymentForm(initial=initial, user=user)
    return render(
        request,
        "payments/new.html",
        {
            "form": form,
            "has_accounts": bool(cast(ChoiceField, form.fields["from_account"]).choices),
            "threshold": f"{settings.STEP_UP_THRESHOLD}",
            "psd2": str(settings.SECURITY_PROFILE) == "psd2",
        },
    )


def _confirm_context(
    request: HttpRequest, payment: Payment, code_form: ConfirmCodeForm | None = None
) -> dict[str, Any]:
    user = _user(request)
    methods = services.step_up_methods(user=user)
    if code_form is None:
        code_form = ConfirmCodeForm(
            methods=methods, initial={"method": services.default_confirm_method(user=user, payment_id=payment.id)}
        )
    return {
        "payment": payment,
        "methods": methods,
        "code_form": code_form,
        "can_send": [m for m in ("sms", "email") if m in methods],
        "has_code_method": any(m in methods for m in ("totp", "sms", "email")),
        "passkey": "webauthn" in methods,
        "attempts_left": max(settings.PAYMENT_STEP_UP_MAX_ATTEMPTS - payment.step_up_attempts, 0),
        "email_fallback": services.email_fallback_only(user=user, methods=methods),
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def payment_confirm_view(request: HttpRequest, payment_id: str) -> HttpResponse:
    user = _user(request)
    payment = selectors.payment_for_user(user=user, payment_id=payment_id)
    if payment.status != Payment.Status.PENDING_STEP_UP:
        return redirect("payments:detail", payment_id=payment.id)
    code_form = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "send":
                result = services.payment_step_up_send(
                    user=user, payment_id=payment.id, method=request.POST.get("method", "")
                )
                messages.info(request, f"We sent a code to {result.get('sent_to') or 'you'}.")
                return redirect("payments:confirm", payment_id=payment.id)
            code_form = ConfirmCodeForm(request.POST, methods=services.step_up_methods(user=user))
            if code_form.is_valid():
                services.payment_confirm(
                    user=user,
                    payment_id=payment.id,
                    method=code_form.cleaned_data["method"],
                    code=code_form.cleaned_data["code"],
                )
                messages.success(request, f"Payment of {payment.amount} {payment.currency} confirmed and sent.")
                return redirect("payments:detail", payment_id=payment.id)
        except services.StepUpInvalid as exc:
            assert code_form is not None
            code_form.add_error(
                "code", f"{exc.message} {exc.attempts_left} attempt{'s' if exc.attempts_left != 1 else ''} left."
            )
        except services.PaymentGone as exc:
            messages.error(request, exc.message)
            return redirect("payments:detail", payment_id=payment.id)
        except services.PaymentError as exc:
            messages.error(request, exc.message)
            if exc.code == "insufficient_funds":
                return redirect("payments:detail", payment_id=payment.id)
            return redirect("payments:confirm", payment_id=payment.id)
        payment.refresh_from_db()
    return render(request, "payments/confirm.html", _confirm_context(request, payment, code_form))


@never_cache
@login_required
@require_POST
def payment_passkey_begin_view(request: HttpRequest, payment_id: str) -> JsonResponse:
    user = _user(request)
    payment = selectors.payment_for_user(user=user, payment_id=payment_id)
    try:
        result = services.payment_step_up_send(user=user, payment_id=payment.id, method="webauthn")
    except services.PaymentError as exc:
        return JsonResponse({"detail": exc.message, "code": exc.code}, status=exc.status)
    return JsonResponse(result["options"])


@never_cache
@login_required
@require_POST
def payment_passkey_finish_view(request: HttpRequest, payment_id: str) -> JsonResponse:
    user = _user(request)
    payment = selectors.payment_for_user(user=user, payment_id=payment_id)
    body = json_body(request)
    credential = body.get("credential", body) if isinstance(body, dict) else body
    try:
        services.payment_confirm(user=user, payment_id=payment.id, method="webauthn", credential=credential)
    except services.PaymentGone as exc:
        messages.error(request, exc.message)
        detail_url = reverse("payments:detail", kwargs={"payment_id": payment.id})
        return JsonResponse({"detail": exc.message, "code": exc.code, "redirect": detail_url}, status=exc.status)
    except services.PaymentError as exc:
        return JsonResponse({"detail": exc.message, "code": exc.code}, status=exc.status)
    messages.success(request, f"Payment of {payment.amount} {payment.currency} confirmed and sent.")
    return JsonResponse({"redirect": reverse("payments:detail", kwargs={"payment_id": payment.id})})


@never_cache
@login_required
def payment_detail_view(request: HttpRequest, payment_id: str) -> HttpResponse:
    payment = selectors.payment_for_user(user=_user(request), payment_id=payment_id)
    return render(request, "payments/detail.html", {"payment": payment, "fraud_form": FraudReportForm()})


@never_cache
@login_required
@require_POST
def payment_report_fraud_view(request: HttpRequest, payment_id: str) -> HttpResponse:
    """ "This wasn't me": the customer reports a completed payment as unauthorised."""
    user = _user(request)
    payment = selectors.payment_for_user(user=user, payment_id=payment_id)
    form = FraudReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tell us in at most 200 characters what happened, or leave it empty.")
        return redirect("payments:detail", payment_id=payment.id)
    try:
        services.payment_report_fraud(user=user, payment_id=payment.id, reason=form.cleaned_data["reason"])
    except services.PaymentError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "Thank you: we recorded that you did not make this payment. Our team will contact you. "
            "If someone else knows your password, change it now.",
        )
    return redirect("payments:detail", payment_id=payment.id)


@never_cache
@login_required
@_account_information
def payment_list_view(request: HttpRequest, *, history_since: Any = None) -> HttpResponse:
    payments = selectors.payments_for_user(user=_user(request))
    if history_since is not None:
        payments = payments.filter(created_at__gte=history_since)
    page = Paginator(payments, 25).get_page(request.GET.get("page"))
    return render(request, "payments/list.html", {"page": page, **_history_context(request, history_since)})


@never_cache
@login_required
@_account_information
def statement_view(request: HttpRequest, account_id: str, *, history_since: Any = None) -> HttpResponse:
    account = selectors.account_for_user(user=_user(request), account_id=account_id)
    entries = selectors.statement_entries(account=account)
    if history_since is not None:
        entries = entries.filter(created_at__gte=history_since)
    page = Paginator(entries, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "payments/statement.html",
        {"account": account, "page": page, **_history_context(request, history_since)},
    )


@never_cache
@login_required
def beneficiary_list_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "payments/beneficiaries.html",
        {
            "beneficiaries": selectors.beneficiaries_for_user(user=_user(request)),
            "threshold": settings.STEP_UP_THRESHOLD,
        },
    )


@never_cache
@login_required
@reauth_required
@require_http_methods(["GET", "POST"])
def beneficiary_add_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = BeneficiaryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            beneficiary = services.beneficiary_add(
                request=request, user=user, name=form.cleaned_data["name"], iban=form.cleaned_data["iban"]
            )
        except ReauthRequired:
            return reauth_redirect(request)
        except services.PaymentError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"{beneficiary.name} was added to your beneficiaries.")
            return redirect("payments:beneficiaries")
    return render(request, "payments/beneficiary_add.html", {"form": form})


@never_cache
@login_required
@require_GET
@_account_information
def dashboard_view(request: HttpRequest, *, history_since: Any = None) -> HttpResponse:
    """The start page ("/"): the customer's accounts, recent payments and security activity."""
    user = _user(request)
    return render(
        request,
        "payments/dashboard.html",
        {"accounts": selectors.accounts_for_user(user=user), "events": events_for_user(user=user, limit=5)},
    )


# --- Trusted beneficiaries (RTS Art. 13) -------------------------------------------------------


def _trust_context(
    request: HttpRequest, beneficiary: Beneficiary, code_form: ConfirmCodeForm | None = None
) -> dict[str, Any]:
    user = _user(request)
    methods = [m for m in services.step_up_methods(user=user) if m in services.CODE_CONFIRM_METHODS]
    pending = beneficiary.trust_challenge_id is not None and bool(beneficiary.trust_expires_at)
    if code_form is None:
        code_form = ConfirmCodeForm(
            methods=methods,
            initial={"method": services.default_trust_method(user=user, beneficiary_id=beneficiary.id)},
        )
    return {
        "beneficiary": beneficiary,
        "pending": pending,
        "methods": methods,
        "code_form": code_form,
        "can_send": [m for m in ("sms", "email") if m in methods],
        "email_fallback": services.email_fallback_only(user=user, methods=methods),
    }


@never_cache
@login_required
@reauth_required
@require_http_methods(["GET", "POST"])
def beneficiary_trust_view(request: HttpRequest, beneficiary_id: str) -> HttpResponse:
    """Trusting a payee: a recent re-authentication (the decorator), then a second factor bound to it."""
    user = _user(request)
    beneficiary = selectors.beneficiary_for_user(user=user, beneficiary_id=beneficiary_id)
    if beneficiary.is_trusted:
        messages.info(request, f"{beneficiary.name} is already trusted.")
        return redirect("payments:beneficiaries")
    code_form = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "start":
                services.beneficiary_trust_begin(request=request, user=user, beneficiary_id=beneficiary.id)
                return redirect("payments:beneficiary_trust", beneficiary_id=beneficiary.id)
            if action == "send":
                challenge = services.beneficiary_trust_send(
                    user=user, beneficiary_id=beneficiary.id, method=request.POST.get("method", "")
                )
                messages.info(request, f"We sent a code to {getattr(challenge, 'sent_to', '') or 'you'}.")
                return redirect("payments:beneficiary_trust", beneficiary_id=beneficiary.id)
            methods = [m for m in services.step_up_methods(user=user) if m in services.CODE_CONFIRM_METHODS]
            code_form = ConfirmCodeForm(request.POST, methods=methods)
            if code_form.is_valid():
                services.beneficiary_trust_confirm(
                    user=user,
                    beneficiary_id=beneficiary.id,
                    method=code_form.cleaned_data["method"],
                    code=code_form.cleaned_data["code"],
                )
                messages.success(
                    request, f"{beneficiary.name} is now trusted: payments to it no longer ask for a code."
                )
                return redirect("payments:beneficiaries")
        except ReauthRequired:
            return reauth_redirect(request)
        except services.StepUpInvalid as exc:
            assert code_form is not None
            code_form.add_error("code", exc.message)
        except services.PaymentError as exc:
            messages.error(request, exc.message)
            return redirect("payments:beneficiary_trust", beneficiary_id=beneficiary.id)
        beneficiary.refresh_from_db()
    return render(request, "payments/beneficiary_trust.html", _trust_context(request, beneficiary, code_form))


@never_cache
@login_required
@require_POST
def beneficiary_untrust_view(request: HttpRequest, beneficiary_id: str) -> HttpResponse:
    """Removing trust needs no second factor: it only makes payments stricter."""
    beneficiary = services.beneficiary_untrust(user=_user(request), beneficiary_id=beneficiary_id)
    messages.success(request, f"{beneficiary.name} is no longer trusted: payments to it ask for a code again.")
    return redirect("payments:beneficiaries")


# --- Standing orders (RTS Art. 14) -------------------------------------------------------------


@never_cache
@login_required
def standing_order_list_view(request: HttpRequest) -> HttpResponse:
    orders = selectors.standing_orders_for_user(user=_user(request))
    return render(request, "payments/standing_orders.html", {"orders": orders})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def standing_order_new_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = StandingOrderForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = services.own_account(user=user, account_id=data["from_account"])
            order, _pending = services.standing_order_create(
                user=user,
                from_account=data["from_account"],
                amount=data["amount"],
                currency=account.currency,
                frequency=data["frequency"],
                beneficiary=data["beneficiary"] or None,
                to_iban=data["to_iban"] or None,
                payee_name=data["payee_name"],
                reference=data["reference"],
            )
        except services.PaymentError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return redirect("payments:standing_order_confirm", order_id=order.id)
    return render(request, "payments/standing_order_new.html", {"form": form})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def standing_order_confirm_view(request: HttpRequest, order_id: str) -> HttpResponse:
    user = _user(request)
    order = selectors.standing_order_for_user(user=user, order_id=order_id)
    if order.status != StandingOrder.Status.PENDING_SCA:
        return redirect("payments:standing_orders")
    methods = [m for m in services.step_up_methods(user=user) if m in services.CODE_CONFIRM_METHODS]
    code_form = ConfirmCodeForm(
        request.POST or None,
        methods=methods,
        initial={"method": services.default_order_method(user=user, order_id=order.id)},
    )
    if request.method == "POST":
        try:
            if request.POST.get("action") == "send":
                challenge = services.standing_order_send(
                    user=user, order_id=order.id, method=request.POST.get("method", "")
                )
                messages.info(request, f"We sent a code to {getattr(challenge, 'sent_to', '') or 'you'}.")
                return redirect("payments:standing_order_confirm", order_id=order.id)
            if code_form.is_valid():
                done = services.standing_order_confirm(
                    user=user,
                    order_id=order.id,
                    method=code_form.cleaned_data["method"],
                    code=code_form.cleaned_data["code"],
                )
                note = " Its first payment was made now." if done.executions == 1 and not done.last_failure else ""
                messages.success(request, f"Standing order confirmed.{note}")
                return redirect("payments:standing_orders")
        except services.StepUpInvalid as exc:
            code_form.add_error("code", exc.message)
        except services.PaymentError as exc:
            messages.error(request, exc.message)
            return redirect("payments:standing_orders")
    return render(
        request,
        "payments/standing_order_confirm.html",
        {
            "order": order,
            "code_form": code_form,
            "methods": methods,
            "can_send": [m for m in ("sms", "email") if m in methods],
            "email_fallback": services.email_fallback_only(user=user, methods=methods),
        },
    )


@never_cache
@login_required
@require_POST
def standing_order_cancel_view(request: HttpRequest, order_id: str) -> HttpResponse:
    services.standing_order_cancel(user=_user(request), order_id=order_id)
    messages.success(request, "Standing order cancelled.")
    return redirect("payments:standing_orders")
