from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import User
from payments.models import BankAccount, Beneficiary, LedgerEntry, Payment, StandingOrder


def accounts_for_user(*, user: User) -> QuerySet[BankAccount]:
    return BankAccount.objects.filter(owner=user, kind=BankAccount.Kind.CUSTOMER, is_active=True).order_by("created_at")


def internal_balance(*, kind: str, currency: str) -> Decimal:
    """The balance of one of the bank's own accounts in a currency: the sum of its sub-accounts
    (the clearing account is PAYMENT_CLEARING_SHARDS ledger accounts, payments.services.clearing_account)."""
    total = BankAccount.objects.filter(kind=kind, currency=currency, owner__isnull=True).aggregate(total=Sum("balance"))
    return Decimal(total["total"] or 0).quantize(Decimal("0.01"))


def internal_balances() -> dict[tuple[str, str], Decimal]:
    """(kind, currency) -> the summed balance of the bank's own accounts, for reports."""
    rows = (
        BankAccount.objects.filter(owner__isnull=True)
        .values_list("kind", "currency")
        .annotate(total=Sum("balance"))
        .order_by("kind", "currency")
    )
    return {(kind, currency): Decimal(total) for kind, currency, total in rows}


def ledger_total() -> Decimal:
    """The sum of every ledger entry: zero in a consistent ledger."""
    return LedgerEntry.objects.aggregate(total=Sum("amount"))["total"] or Decimal("0")


def ledger_inconsistencies() -> list[str]:
    """Accounts whose cached balance differs from the sum of their entries, and an unbalanced ledger."""
    problems = []
    sums = dict(LedgerEntry.objects.values("account").annotate(total=Sum("amount")).values_list("account", "total"))
    for account in BankAccount.objects.all():
        expected = sums.get(account.id, Decimal("0")) or Decimal("0")
        if account.balance != expected:
            problems.append(f"{account.iban}: cached {account.balance} != ledger {expected}")
    total = ledger_total()
    if total != 0:
        problems.append(f"ledger entries sum to {total}, not 0")
    return problems


def money(value: Decimal) -> str:
    """Money as a decimal string with two places (never a float)."""
    return str(Decimal(value).quantize(Decimal("0.01")))


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def account_for_user(*, user: User, account_id: object) -> BankAccount:
    """The user's own account, else Http404 (another customer's account is simply not found)."""
    try:
        key = uuid.UUID(str(account_id))
    except (TypeError, ValueError, AttributeError) as exc:
        raise Http404("no such account") from exc
    return get_object_or_404(accounts_for_user(user=user), id=key)


def payment_for_user(*, user: User, payment_id: object) -> Payment:
    try:
        key = uuid.UUID(str(payment_id))
    except (TypeError, ValueError, AttributeError) as exc:
        raise Http404("no such payment") from exc
    return get_object_or_404(payments_for_user(user=user), id=key)


def payments_for_user(*, user: User) -> QuerySet[Payment]:
    return Payment.objects.filter(owner=user).select_related("from_account", "beneficiary").order_by("-created_at")


def beneficiaries_for_user(*, user: User) -> QuerySet[Beneficiary]:
    return Beneficiary.objects.filter(owner=user).order_by("name", "created_at")


def beneficiary_for_user(*, user: User, beneficiary_id: object) -> Beneficiary:
    try:
        key = uuid.UUID(str(beneficiary_id))
    except (TypeError, ValueError, AttributeError) as exc:
        raise Http404("no such beneficiary") from exc
    return get_object_or_404(beneficiaries_for_user(user=user), id=key)


def statement_entries(*, account: BankAccount) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(account=account)
        .select_related("posting", "posting__payment")
        .order_by("-created_at", "-id")
    )


def account_representation(account: BankAccount) -> dict[str, Any]:
    return {
        "id": str(account.id),
        "iban": account.iban,
        "name": account.name,
        "currency": account.currency,
        "balance": money(account.balance),
    }


def beneficiary_representation(beneficiary: Beneficiary) -> dict[str, Any]:
    return {
        "id": str(beneficiary.id),
        "name": beneficiary.name,
        "iban": beneficiary.iban,
        "created_at": iso(beneficiary.created_at),
        "trusted": beneficiary.is_trusted,
        "trusted_at": iso(beneficiary.trusted_at) if beneficiary.is_trusted else None,
    }


def sca_representation(payment: Payment) -> dict[str, Any]:
    """shared/API.md: whether SCA applies to the payment, or the RTS exemption that lifted it."""
    return {
        "required": bool(payment.sca_required),
        "exemption": payment.sca_exemption or None,
        "article": payment.sca_article or None,
    }


def add_factor_invitation() -> dict[str, Any]:
    """What a customer confirming with the emailed fallback code is invited to do."""
    from django.urls import reverse

    return {
        "detail": "We email the code to your verified address. For a stronger confirmation, add an "
        "authenticator app or a passkey on the Security page.",
        "url": reverse("accounts:security"),
    }


def standing_orders_for_user(*, user: User) -> QuerySet[StandingOrder]:
    return StandingOrder.objects.filter(owner=user).select_related("from_account").order_by("-created_at")


def standing_order_for_user(*, user: User, order_id: object) -> StandingOrder:
    try:
        key = uuid.UUID(str(order_id))
    except (TypeError, ValueError, AttributeError) as exc:
        raise Http404("no such standing order") from exc
    return get_object_or_404(standing_orders_for_user(user=user), id=key)


def standing_order_representation(order: StandingOrder) -> dict[str, Any]:
    return {
        "id": str(order.id),
        "status": order.status,
        "from_account": str(order.from_account_id),
        "beneficiary": str(order.beneficiary_id) if order.beneficiary_id else None,
        "to_iban": order.payee_iban,
        "payee_name": order.payee_name,
        "amount": money(order.amount),
        "currency": order.currency,
        "reference": order.reference,
        "frequency": order.frequency,
        "next_run_at": iso(order.next_run_at),
        "executions": order.executions,
        "created_at": iso(order.created_at),
        "sca": {
            "required": order.status == StandingOrder.Status.PENDING_SCA,
            "exemption": None,
            "article": "RTS Art. 14",
        },
    }


def payment_representation(payment: Payment, *, methods: list[str] | None = None) -> dict[str, Any]:
    """The API's view of a payment; `step_up` only while it waits for confirmation."""
    body: dict[str, Any] = {
        "id": str(payment.id),
        "status": payment.status,
        "from_account": str(payment.from_account_id),
        "beneficiary": str(payment.beneficiary_id) if payment.beneficiary_id else None,
        "to_iban": payment.payee_iban,
        "payee_name": payment.payee_name,
        "amount": money(payment.amount),
        "currency": payment.currency,
        "reference": payment.reference,
        "created_at": iso(payment.created_at),
        "completed_at": iso(payment.completed_at),
        "sca": sca_representation(payment),
    }
    if payment.standing_order_id:
        body["standing_order"] = str(payment.standing_order_id)
    if payment.fraud_reported_at:
        body["fraud_reported_at"] = iso(payment.fraud_reported_at)
    if payment.status == Payment.Status.PENDING_STEP_UP:
        if methods is None:
            from payments.services import step_up_methods

            methods = step_up_methods(user=payment.owner)
        body["step_up"] = {
            "challenge_id": str(payment.step_up_challenge_id),
            "methods": methods,
            "expires_at": iso(payment.step_up_expires_at),
            "attempts_left": max(settings.PAYMENT_STEP_UP_MAX_ATTEMPTS - payment.step_up_attempts, 0),
            "reasons": list(payment.step_up_reasons or []),
        }
        from payments.services import email_fallback_only

        if email_fallback_only(user=payment.owner, methods=methods):
            body["step_up"]["add_factor"] = add_factor_invitation()
    if payment.refusal_reason:
        body["refusal_reason"] = payment.refusal_reason
    return body


def account_access_sca_due(*, user: User) -> bool:
    """RTS Art. 10 (PSD2 profile): without a second-factor session, balances and the last
    SCA_ACCOUNT_ACCESS_DAYS of payments may be shown only if SCA was applied within that many days
    (a second-factor session, or a payment, payee or standing order confirmed with SCA)."""
    from django.utils import timezone

    from payments.models import ScaState

    state = ScaState.objects.filter(user=user).first()
    latest = max((t for t in (state.account_sca_at, state.last_sca_at) if t), default=None) if state else None
    limit = timezone.now() - timedelta(days=settings.SCA_ACCOUNT_ACCESS_DAYS)
    return latest is None or latest < limit


def history_since() -> datetime:
    from django.utils import timezone

    return timezone.now() - timedelta(days=settings.SCA_ACCOUNT_ACCESS_DAYS)
