"""Journey (issue 16): under the PSD2 profile, a customer trusts a beneficiary with a second factor
and then pays it without one; a small payment to a new IBAN from this new browser is challenged."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import pytest
from playwright.sync_api import expect

from accounts.models import User
from payments import services as payments
from payments.models import Beneficiary, Payment
from tests.accounts.factories import UserFactory
from tests.e2e.conftest import Tab
from tests.e2e.pages import audit_types, find_code, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_trust_a_beneficiary_with_a_second_factor_then_pay_it_without_one(
    tab: Tab, emails: Callable[..., list[Any]], settings: Any
) -> None:
    from mfa.models import EmailFactor

    user = cast(User, UserFactory(email="tenant@example.com", full_name="Terry Tenant"))
    payments.account_open(owner=user, currency="EUR", name="Current", opening_balance=Decimal("5000.00"))
    landlord = Beneficiary.objects.create(owner=user, name="Landlord", iban="DE89370400440532013000")
    sign_in(tab, user.email)
    EmailFactor.objects.create(user=user, name="email", email=user.email, confirmed=True)
    settings.SECURITY_PROFILE = "psd2"
    page = tab.page

    tab.goto("/payments/beneficiaries/")
    tab.check()
    page.get_by_role("link", name="Trust", exact=True).click()
    tab.check()
    expect(page.get_by_role("heading", name="Trust Landlord")).to_be_visible()
    page.get_by_role("button", name="Trust this beneficiary").click()
    tab.check()
    page.get_by_role("button", name="Send code by email").click()
    tab.check()
    expect(page.locator(".messages")).to_contain_text("We sent a code")
    message = [m for m in emails(user.email) if "Landlord" in m.body][-1]
    page.get_by_label("Code", exact=True).fill(find_code(message))
    page.get_by_role("button", name="Confirm: trust Landlord").click()
    tab.check()
    expect(page.locator(".messages")).to_contain_text("Landlord is now trusted")
    expect(page.locator(".badge-trusted")).to_have_text("Trusted")
    tab.screenshot("beneficiary-trusted")

    # Paying the trusted landlord: no second factor, and the page says which exemption applied.
    tab.goto(f"/payments/new/?beneficiary={landlord.id}")
    page.get_by_label("Amount").fill("950.00")
    page.get_by_label("Reference (optional)").fill("Rent")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("load")
    tab.check()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment of 950.00 EUR")
    expect(page.locator(".pay-sca")).to_contain_text("to a beneficiary you trusted (RTS Art. 13)")
    rent = Payment.objects.get(owner=user, amount=Decimal("950.00"))
    assert rent.status == Payment.Status.COMPLETED and rent.sca_exemption == "trusted_beneficiary"

    # A small payment to an IBAN never paid, from this browser first seen minutes ago: challenged.
    tab.goto("/payments/new/")
    page.get_by_label("Payee name").fill("Unknown Shop")
    page.get_by_label("Payee IBAN").fill("GB33 BUKB 2020 1555 5555 55")
    page.get_by_label("Amount").fill("20.00")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("load")
    tab.check()
    expect(page).to_have_url(re.compile(r"/payments/[0-9a-f-]+/confirm/$"))
    expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    expect(page.get_by_text("new payee or device")).to_be_visible()
    tab.screenshot("payment-new-device-challenged")
    small = Payment.objects.get(owner=user, amount=Decimal("20.00"))
    assert small.status == Payment.Status.PENDING_STEP_UP and small.step_up_reasons == ["high_risk"]
    types = audit_types(user)
    assert "beneficiary.trusted" in types and types.count("payment.sca_decided") == 2, types


def test_a_standing_order_is_confirmed_once_with_a_second_factor(tab: Tab, emails: Callable[..., list[Any]]) -> None:
    from mfa.models import EmailFactor
    from payments.models import StandingOrder

    user = cast(User, UserFactory(email="member@example.com", full_name="Gym Member"))
    payments.account_open(owner=user, currency="EUR", name="Current", opening_balance=Decimal("1000.00"))
    sign_in(tab, user.email)
    EmailFactor.objects.create(user=user, name="email", email=user.email, confirmed=True)
    page = tab.page
    tab.goto("/payments/standing-orders/")
    tab.check()
    page.get_by_role("link", name="New standing order").click()
    tab.check()
    page.get_by_label("Payee name").fill("City Gym")
    page.get_by_label("Payee IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_label("Amount").fill("29.90")
    page.get_by_label("How often").select_option("monthly")
    page.get_by_role("button", name="Continue").click()
    tab.check()
    expect(page.get_by_role("heading", name="Confirm your standing order")).to_be_visible()
    page.get_by_role("button", name="Send code by email").click()
    tab.check()
    message = [m for m in emails(user.email) if "29.90" in m.body][-1]
    page.get_by_label("Code", exact=True).fill(find_code(message))
    page.get_by_role("button", name="Confirm standing order").click()
    tab.check()
    expect(page.locator(".messages")).to_contain_text("Its first payment was made now")
    expect(page.locator("table")).to_contain_text("City Gym")
    order = StandingOrder.objects.get(owner=user)
    assert order.status == "active" and order.executions == 1
    assert Payment.objects.get(owner=user).sca_article == "RTS Art. 14(1)"
