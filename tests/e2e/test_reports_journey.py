"""Journey 7 (issue 8): the security analyst filters the reports, sees the charts, downloads the CSV."""

from __future__ import annotations

import csv
import io
import re
import time
from base64 import b32encode
from datetime import UTC, datetime
from typing import cast

import pyotp
import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.e2e.conftest import Browsing
from tests.e2e.pages import audit_types, sign_in_password, submit_password

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TOTP_KEY_HEX = "3132333435363738393031323334353637383930"


def test_security_analyst_filters_reports_and_downloads_csv(browsing: Browsing) -> None:
    from mfa.models import TOTPFactor

    # Two failed sign-ins of a customer, made in a browser of their own.
    victim = cast(User, UserFactory(email="victim@example.com"))
    attacker = browsing.new_tab("attacker")
    attacker.goto("/accounts/login/")
    for _ in range(2):
        submit_password(attacker, victim.email, "wrong password")
        attacker.check()
        expect(attacker.page.locator("#login-error")).to_contain_text("not correct")

    # The analyst (group "security") must sign in with a strong factor: an authenticator app.
    analyst = cast(User, UserFactory(email="analyst@example.com", full_name="Sam Analyst", role="security"))
    factor = TOTPFactor(user=analyst, name="app", confirmed=True)
    factor.set_key(TOTP_KEY_HEX)
    factor.save()
    totp = pyotp.TOTP(b32encode(bytes.fromhex(TOTP_KEY_HEX)).decode())

    tab = browsing.new_tab("analyst")
    page = tab.page
    sign_in_password(tab, analyst.email)
    expect(page).to_have_url(re.compile(r"/accounts/login/mfa/"))
    page.locator("input[name=code]").fill(totp.at(time.time()))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(tab.url("/"))
    tab.check()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Security reports", level=1)).to_be_visible()
    tab.check()
    # Dates from the browser's date picker, the event type from the list (issue 16).
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    page.get_by_label("From (UTC)").fill(today)
    page.get_by_label("Until (UTC)").fill(today)
    page.get_by_label("Event type").select_option("auth.login_failed")
    page.get_by_label("Outcome").select_option("failure")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"type=auth\.login_failed"))
    tab.check()

    rows = page.locator("section[aria-labelledby=events-title] .report-table tbody tr")
    expect(rows).to_have_count(2)
    for i in range(2):
        expect(rows.nth(i)).to_contain_text("auth.login_failed")
        expect(rows.nth(i)).to_contain_text("victim@example.com")
    charts = page.locator(".charts figure svg")
    expect(charts).to_have_count(5)
    for i in range(5):
        expect(charts.nth(i)).to_be_visible()
    tab.screenshot("reports")
    page.locator("section[aria-labelledby=charts-title]").evaluate("(el) => el.scrollIntoView({block: 'start'})")
    tab.screenshot("reports-charts", top=False)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert re.fullmatch(r"audit-events-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    path = download.path()
    text = path.read_text(encoding="utf-8")
    records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) == 2, text
    assert {r["type"] for r in records} == {"auth.login_failed"}, text
    assert "audit.exported" in audit_types(analyst)

    page.get_by_role("link", name="Suspicious activity").click()
    expect(page).to_have_url(re.compile(r"/reports/suspicious/"))
    tab.check()
