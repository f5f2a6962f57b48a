"""Journeys 2 and 3 (issue 8): an authenticator app and a passkey, enrolled and used to sign in."""

from __future__ import annotations

import re
import time
from typing import Any, cast

import pyotp
import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.e2e.conftest import Tab
from tests.e2e.pages import audit_types, sign_in_password, sign_out

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _save_recovery_codes(tab: Tab) -> None:
    """After a first factor the portal offers recovery codes; the journey generates and 'saves' them."""
    page = tab.page
    expect(page).to_have_url(re.compile(r"/security/mfa/recovery-codes/$"))
    tab.check()
    page.get_by_role("button", name="Generate recovery codes").click()
    tab.check()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="I have saved them").click()
    tab.check()
    expect(page).to_have_url(re.compile(r"/security/$"))


def test_totp_enrol_sign_out_sign_in_with_code(tab: Tab) -> None:
    user = cast(User, UserFactory(email="totp@example.com", full_name="Tom Otp"))
    sign_in_password(tab, user.email)
    page = tab.page
    expect(page).to_have_url(re.compile(r"/security/mfa/welcome/"))
    tab.screenshot("mfa-invitation")
    page.get_by_role("link", name="Use an authenticator app").click()
    tab.check()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    secret = re.sub(r"\s+", "", page.locator("#totp-secret").inner_text())
    totp = pyotp.TOTP(secret)
    tab.screenshot("mfa-totp-setup")
    page.locator("input[name=code]").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    _save_recovery_codes(tab)
    expect(page.get_by_role("table", name="Your second factors")).to_contain_text("Authenticator app")
    tab.screenshot("security")

    sign_out(tab)
    sign_in_password(tab, user.email)
    expect(page).to_have_url(re.compile(r"/accounts/login/mfa/"))
    expect(page.get_by_text("Enter the 6-digit code from your authenticator app.")).to_be_visible()
    tab.screenshot("mfa-step")
    # The code of the next 30-second step: within the accepted drift, and never the one just used.
    page.locator("input[name=code]").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    tab.check()
    expect(page.get_by_role("heading", name="Hello, Tom")).to_be_visible()
    types = audit_types(user)
    assert "mfa.enrolled" in types and types.index("mfa.enrolled") < types.index("mfa.verified"), types


VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


def test_passkey_enrol_and_sign_in(tab: Tab) -> None:
    user = cast(User, UserFactory(email="passkey@example.com", full_name="Pia Passkey"))
    page = tab.page
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator: dict[str, Any] = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})

    sign_in_password(tab, user.email)
    page.get_by_role("link", name=re.compile("Use a passkey")).click()
    tab.check()
    page.get_by_label(re.compile("^Name")).fill("Test laptop")
    page.get_by_role("button", name="Register a passkey").click()
    _save_recovery_codes(tab)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator["authenticatorId"]})
    assert len(credentials["credentials"]) == 1
    expect(page.get_by_role("table", name="Your second factors")).to_contain_text("Test laptop")

    sign_out(tab)
    sign_in_password(tab, user.email)
    expect(page).to_have_url(re.compile(r"/accounts/login/mfa/"))
    page.get_by_role("button", name="Use my passkey").click()
    expect(page).to_have_url(tab.url("/"))
    tab.check()
    expect(page.get_by_role("heading", name="Hello, Pia")).to_be_visible()
    signed = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator["authenticatorId"]})
    assert signed["credentials"][0]["signCount"] >= 1
    types = audit_types(user)
    assert "mfa.enrolled" in types and types.index("mfa.enrolled") < types.index("mfa.verified"), types
