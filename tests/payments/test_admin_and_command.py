from __future__ import annotations

from decimal import Decimal
from io import StringIO
from typing import Any, cast

import pytest
from django.contrib import admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.cache import SessionStore
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from accounts.models import User
from audit.models import AuditEvent
from payments.models import BankAccount, Payment
from tests.accounts.factories import UserFactory


def admin_request(rf: Any, user: User, data: dict[str, str] | None = None) -> Any:
    request = rf.post("/admin/payments/bankaccount/open/", data) if data is not None else rf.get("/")
    request.user = user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def test_staff_open_account_with_opening_balance_is_audited(rf: Any, customer: User) -> None:
    staff = cast(User, UserFactory(is_staff=True, is_superuser=True))
    model_admin = admin.site._registry[BankAccount]
    data = {"email": customer.email, "currency": "eur", "name": "Savings", "opening_balance": "2500.00"}
    response = model_admin.open_account_view(admin_request(rf, staff, data))  # type: ignore[attr-defined]
    assert response.status_code == 302
    account = BankAccount.objects.get(owner=customer)
    assert account.balance == Decimal("2500.00") and account.currency == "EUR" and account.name == "Savings"
    event = AuditEvent.objects.get(type="payment.account_opened")
    assert event.actor == staff and event.user == customer
    assert event.details["opening_balance"] == "2500.00"


def test_open_account_view_refuses_bad_balance_and_non_staff(rf: Any, customer: User) -> None:
    staff = cast(User, UserFactory(is_staff=True, is_superuser=True))
    model_admin = admin.site._registry[BankAccount]
    bad = {"email": customer.email, "currency": "EUR", "opening_balance": "1.001"}
    response = model_admin.open_account_view(admin_request(rf, staff, bad))  # type: ignore[attr-defined]
    assert response.status_code == 200 and not BankAccount.objects.filter(owner=customer).exists()
    with pytest.raises(PermissionDenied):
        model_admin.open_account_view(admin_request(rf, customer, {}))  # type: ignore[attr-defined]


def test_ledger_and_payments_are_read_only_in_admin(rf: Any) -> None:
    staff = cast(User, UserFactory(is_staff=True, is_superuser=True))
    request = admin_request(rf, staff)
    for model in (BankAccount, Payment):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)


def test_open_account_command(customer: User) -> None:
    out = StringIO()
    call_command(
        "open_account", "--email", customer.email, "--currency", "EUR", "--opening-balance", "50000.00", stdout=out
    )
    account = BankAccount.objects.get(owner=customer)
    assert out.getvalue().strip() == account.iban
    assert account.balance == Decimal("50000.00")
    with pytest.raises(CommandError):
        call_command("open_account", "--email", customer.email, "--currency", "EUR", "--opening-balance", "-5")


def test_staff_mark_payments_as_fraud_after_reauthentication_audited(rf: Any, customer: User) -> None:
    """The admin action of RTS Art. 19: staff report a payment as fraud; the row names the staff member."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from payments import services
    from tests.payments.conftest import EXTERNAL_IBAN

    account = services.account_open(owner=customer, currency="EUR", opening_balance=Decimal("100.00"))
    paid = services.payment_create(
        user=customer, from_account=account.id, amount="10.00", currency="EUR", to_iban=EXTERNAL_IBAN
    ).payment
    analyst = cast(User, UserFactory(is_staff=True))
    analyst.groups.add(Group.objects.get_or_create(name="security")[0])
    model_admin = cast(Any, admin.site._registry[Payment])
    queryset = Payment.objects.filter(id=paid.id)

    stale = admin_request(rf, analyst, {})
    response = model_admin.mark_as_fraud(stale, queryset)
    assert response.status_code == 302 and "/reauth" in response["Location"]
    assert Payment.objects.get(id=paid.id).fraud_reported_at is None

    fresh = admin_request(rf, analyst, {})
    fresh.session["sid"] = "00000000-0000-0000-0000-000000000001"
    fresh.session["auth_time"] = timezone.now().timestamp()
    fresh.session["login_at"] = timezone.now().timestamp()
    assert model_admin.has_fraud_permission(fresh)
    assert model_admin.mark_as_fraud(fresh, queryset) is None
    payment = Payment.objects.get(id=paid.id)
    assert payment.fraud_reported_at is not None and payment.fraud_reported_by == analyst
    event = AuditEvent.objects.get(type="payment.fraud_reported")
    assert event.user == customer and event.actor == analyst and event.details["source"] == "staff"
    # again: refused, nothing new
    model_admin.mark_as_fraud(fresh, queryset)
    assert AuditEvent.objects.filter(type="payment.fraud_reported").count() == 1


def test_a_customer_service_member_cannot_mark_fraud(rf: Any) -> None:
    support = cast(User, UserFactory(is_staff=True))
    model_admin = cast(Any, admin.site._registry[Payment])
    assert not model_admin.has_fraud_permission(admin_request(rf, support, {}))
