"""Check 8 (issue 8) beyond the journeys: the other pages a visitor, a customer and an analyst reach
pass axe-core with no serious or critical violation, log no console error and break no CSP rule."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import cast

import pytest
from playwright.sync_api import expect

from accounts.models import User
from payments import services as payments
from tests.accounts.factories import UserFactory
from tests.e2e.conftest import Tab
from tests.e2e.pages import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _visit(tab: Tab, path: str, heading: str | re.Pattern[str]) -> None:
    tab.goto(path)
    expect(tab.page.get_by_role("heading", level=1)).to_have_text(heading)


def test_public_pages(tab: Tab) -> None:
    _visit(tab, "/accounts/signup/", "Open an account")
    _visit(tab, "/accounts/password/reset/", re.compile("password", re.I))
    tab.allow_console(r"status of 404")
    _visit(tab, "/no-such-page/", re.compile(".+"))
    # The API reference: Swagger UI served from our own static files must work under the same
    # strict CSP (no violation, no console error). Its markup is Swagger UI's own (contrast of the
    # method badges, nested controls), a developer page outside the customer journeys: not held to axe.
    tab.page.goto(tab.url("/api/docs/"))
    expect(tab.page.locator(".swagger-ui .info .title")).to_be_visible()
    expect(tab.page.locator(".opblock").first).to_be_visible()
    tab.exempt_from_axe("third-party Swagger UI markup")


def test_customer_pages(tab: Tab) -> None:
    user = cast(User, UserFactory(email="tour@example.com", full_name="Toni Tour"))
    account = payments.account_open(owner=user, currency="EUR", name="Current", opening_balance=Decimal("100.00"))
    sign_in(tab, user.email)
    _visit(tab, "/payments/", re.compile("payments", re.I))
    _visit(tab, "/payments/new/", "New payment")
    _visit(tab, "/payments/beneficiaries/", re.compile("beneficiaries", re.I))
    _visit(tab, "/payments/beneficiaries/add/", re.compile(".+"))
    _visit(tab, f"/payments/accounts/{account.id}/statement/", "Current")
    _visit(tab, "/accounts/password/change/", re.compile("password", re.I))
    _visit(tab, "/security/export/", re.compile(".+"))


def test_password_fields_can_be_shown_and_hidden(tab: Tab) -> None:
    """ASVS 2.1.12: a "Show password" button beside every password field."""
    tab.goto("/accounts/login/")
    field = tab.page.locator("#id_password")
    field.fill("a long secret passphrase")
    toggle = tab.page.get_by_role("button", name="Show password")
    expect(field).to_have_attribute("type", "password")
    toggle.click()
    expect(field).to_have_attribute("type", "text")
    expect(tab.page.get_by_role("button", name="Hide password")).to_have_attribute("aria-pressed", "true")
    tab.page.get_by_role("button", name="Hide password").click()
    expect(field).to_have_attribute("type", "password")
    expect(field).to_have_value("a long secret passphrase")
