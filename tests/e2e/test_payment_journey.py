"""Journey 4 (issue 8): a small payment goes straight through; a large one needs the emailed code."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from playwright.sync_api import expect

from accounts.models import User
from payments import services as payments
from payments.models import Payment
from tests.accounts.factories import UserFactory
from tests.e2e.conftest import Tab
from tests.e2e.pages import PASSWORD, audit_types, find_code, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAYEE_IBAN = "DE89 3704 0044 0532 0130 00"


def _pay(tab: Tab, amount: str, reference: str) -> None:
    page = tab.goto("/payments/new/")
    page.get_by_label("Payee name").fill("Jane Doe")
    page.get_by_label("Payee IBAN").fill(PAYEE_IBAN)
    page.get_by_label("Amount").fill(amount)
    page.get_by_label("Reference (optional)").fill(reference)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("load")
    tab.check()


def test_small_payment_then_large_payment_with_emailed_code(tab: Tab, emails: Callable[..., list[Any]]) -> None:
    from mfa.models import EmailFactor

    user = cast(User, UserFactory(email="payer@example.com", full_name="Pat Payer"))
    account = payments.account_open(owner=user, currency="EUR", name="Current", opening_balance=Decimal("20000.00"))
    sign_in(tab, user.email)
    balance = tab.page.locator(f".account-balance[data-account='{account.id}']")
    expect(balance).to_have_text("20000.00 EUR")
    # The customer confirms large payments with codes sent to a verified email address.
    EmailFactor.objects.create(user=user, name="email", email=user.email, confirmed=True)

    _pay(tab, "500.00", "Rent")
    page = tab.page
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment of 500.00 EUR")
    expect(page.locator(".messages")).to_contain_text("Payment of 500.00 EUR sent.")
    assert Payment.objects.get(owner=user, amount=Decimal("500.00")).status == Payment.Status.COMPLETED

    _pay(tab, "15000.00", "Car")
    expect(page).to_have_url(re.compile(r"/payments/[0-9a-f-]+/confirm/$"))
    expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    assert Payment.objects.get(owner=user, amount=Decimal("15000.00")).status == Payment.Status.PENDING_STEP_UP
    page.get_by_role("button", name="Send code by email").click()
    tab.check()
    expect(page.locator(".messages")).to_contain_text("We sent a code")
    tab.screenshot("payment-confirm")

    # The code's email says what it authorises: this payment, its amount and payee.
    message = [m for m in emails(user.email) if "15000.00" in m.body][-1]
    assert "Jane Doe" in message.body, message.body
    page.get_by_label("Code", exact=True).fill(find_code(message))
    page.get_by_role("button", name="Confirm payment of 15000.00 EUR").click()
    tab.check()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment of 15000.00 EUR")
    expect(page.locator(".messages")).to_contain_text("confirmed and sent")
    tab.screenshot("payment-done")

    page.get_by_role("link", name="Accounts", exact=True).click()
    tab.check()
    expect(balance).to_have_text("4500.00 EUR")
    tab.screenshot("dashboard")
    types = audit_types(user)
    assert types.count("payment.completed") == 2, types
    assert "payment.step_up_issued" in types and types.count("payment.step_up_passed") == 1, types


def test_reauthentication_keeps_the_submitted_form(tab: Tab, time_machine: Any) -> None:
    """Sudo mode in the browser: a sensitive form sent after REAUTH_MAX_AGE_SECONDS asks for the
    password, then the held submission completes by itself (mfa-continue.js, under the CSP)."""
    from django.conf import settings
    from django.utils import timezone

    from payments.models import Beneficiary

    user = cast(User, UserFactory(email="sudo@example.com", full_name="Sue Sudo"))
    sign_in(tab, user.email)
    page = tab.goto("/payments/beneficiaries/add/")
    expect(page.get_by_role("heading", name="Add a beneficiary")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Jane Doe")
    page.get_by_label("IBAN", exact=True).fill(PAYEE_IBAN)
    # The customer lingers on the form past the re-authentication window (the session stays alive).
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.REAUTH_MAX_AGE_SECONDS + 60), tick=True)
    page.get_by_role("button", name="Add beneficiary").click()
    expect(page).to_have_url(re.compile(r"/accounts/reauth/"))
    tab.check()
    expect(page.get_by_text("What you submitted has been kept")).to_be_visible()
    assert not Beneficiary.objects.filter(owner=user).exists()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(tab.url("/payments/beneficiaries/"))
    tab.check()
    expect(page.locator(".messages")).to_contain_text("Jane Doe was added")
    assert Beneficiary.objects.filter(owner=user, name="Jane Doe").count() == 1
    assert "auth.reauthenticated" in audit_types(user)
