"""Single sign-on (issue 14): two relying parties sign in through the portal; one sign-out ends both.

The demo relying party (examples/relying_party) runs twice beside the portal's live server, each a
process of its own on a free port with a client registered for that port: "Reporting tool" (a
third party: the portal asks for consent) and "Mortgage app" (first party, trusted: no consent).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pyotp
import pytest
from django.conf import settings
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.e2e import relying_party
from tests.e2e.conftest import Tab
from tests.e2e.pages import audit_types, sign_in, sign_out, submit_password

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ACR_MFA = "urn:bank-portal:acr:mfa"


@pytest.fixture
def start_rp(base_url: str, tmp_path: Path) -> Iterator[Callable[..., relying_party.RelyingParty]]:
    started: list[relying_party.RelyingParty] = []

    def _start(name: str, *, trusted: bool) -> relying_party.RelyingParty:
        rp = relying_party.start(name=name, issuer=base_url, workdir=tmp_path, trusted=trusted)
        started.append(rp)
        return rp

    yield _start
    for rp in started:
        rp.stop()


def _totp_user() -> tuple[User, pyotp.TOTP]:
    import secrets

    from mfa.models import TOTPFactor

    user = cast(User, UserFactory(email="sso@example.com", full_name="Sam Single"))
    device = TOTPFactor(user=user, name="Phone", confirmed=True)
    device.set_key(secrets.token_hex(20))
    device.save()
    parsed = pyotp.parse_uri(device.config_url(issuer=settings.MFA_TOTP_ISSUER))
    assert isinstance(parsed, pyotp.TOTP)
    return user, parsed


def _open(tab: Tab, url: str) -> None:
    tab.page.goto(url)
    tab.check()


def _back_at(tab: Tab, rp: relying_party.RelyingParty) -> None:
    """The portal's answer reached the relying party (its callback, then its home page)."""
    try:
        tab.page.wait_for_url(rp.url + "/")
    except PlaywrightTimeoutError:
        blocked = [v for v in tab.csp_violations if v.get("directive") == "form-action"]
        raise AssertionError(
            f"the browser never got back to {rp.name} ({rp.url}); still at {tab.page.url}. "
            + (
                "The portal's Content-Security-Policy form-action blocked the redirect to the client "
                "(Chromium enforces form-action on the redirects that follow a form submission, so the "
                f"login, second-factor and consent pages must allow the client's redirect origin): {blocked}"
                if blocked
                else f"{rp.name} log:\n{rp.log()}"
            )
        ) from None
    tab.check()


def _claim(tab: Tab, label: str) -> str:
    row = tab.page.get_by_role("row").filter(has=tab.page.get_by_role("rowheader", name=re.compile(label)))
    return str(row.get_by_role("cell").inner_text()).strip()


def test_sign_in_with_mfa_and_consent_then_sso_then_single_sign_out(
    tab: Tab, base_url: str, start_rp: Callable[..., relying_party.RelyingParty]
) -> None:
    user, totp = _totp_user()
    reporting = start_rp("Reporting tool", trusted=False)
    mortgage = start_rp("Mortgage app", trusted=True)
    page = tab.page

    # 1. The third-party app asks for a second factor; the portal signs the user in with password + TOTP.
    _open(tab, reporting.url + "/")
    expect(page.get_by_role("heading", name="Sign in to Reporting tool")).to_be_visible()
    tab.screenshot("sso-rp-start")
    page.get_by_role("button", name="Sign in with MFA").click()
    expect(page).to_have_url(re.compile(re.escape(base_url) + r"/accounts/login/"))
    tab.check()
    submit_password(tab, user.email)
    expect(page).to_have_url(re.compile(r"/accounts/login/mfa/"))
    tab.check()
    tab.screenshot("sso-portal-mfa")
    page.locator("input[name=code]").fill(totp.now())
    page.get_by_role("button", name="Continue").click()

    # 2. Consent for the third party, in plain words.
    page.wait_for_load_state("load")
    assert page.url.startswith(base_url), page.url
    tab.check()
    expect(page.get_by_text("Reporting tool").first).to_be_visible()
    tab.screenshot("sso-consent")
    page.get_by_role("button", name=re.compile(r"^(allow|approve|authori[sz]e|continue|accept)", re.I)).click()

    # 3. Back at the relying party, signed in at the MFA level.
    _back_at(tab, reporting)
    signed_in = "You are signed in to Reporting tool through the bank, with a second factor"
    expect(page.get_by_text(signed_in)).to_be_visible()
    assert _claim(tab, "Email") == user.email
    assert _claim(tab, "Level") == ACR_MFA
    assert "otp" in _claim(tab, "Methods")
    assert _claim(tab, "Subject") == str(user.public_id)
    reporting_sid = _claim(tab, "Bank session")
    tab.screenshot("sso-rp-signed-in")

    # 4. A second app, first party: no password, no consent (single sign-on on the portal session).
    _open(tab, mortgage.url + "/")
    portal_pages_before = len(tab.visited)
    page.get_by_role("button", name="Sign in with the bank").click()
    _back_at(tab, mortgage)
    assert tab.visited[portal_pages_before:] == [], "the portal showed no page: no password, no consent"
    expect(page.get_by_text("You are signed in to Mortgage app through the bank")).to_be_visible()
    assert _claim(tab, "Bank session") == reporting_sid
    assert _claim(tab, "Email") == user.email
    tab.screenshot("sso-second-app")

    # 5. Signing out of the portal ends both apps' sessions at once (back-channel logout).
    tab.goto("/")
    sign_out(tab)
    for rp in (reporting, mortgage):
        _open(tab, rp.url + "/")
        expect(page.get_by_text("You are not signed in.")).to_be_visible()
        expect(page.get_by_text("The bank ended your session here")).to_be_visible()
        assert "POST /oidc/backchannel-logout/" in rp.log(), rp.log()
    tab.screenshot("sso-signed-out-everywhere")

    types = audit_types(user)
    for expected in ("auth.login_succeeded", "oauth.consent_given", "oauth.authorized", "oauth.token_issued"):
        assert expected in types, types
    assert types.count("oauth.consent_given") == 1, types  # the trusted app asked for none
    assert "oidc.backchannel_logout_queued" in types, types


def test_signing_out_of_the_app_signs_out_of_the_portal_too(
    tab: Tab, base_url: str, start_rp: Callable[..., relying_party.RelyingParty]
) -> None:
    """RP-initiated logout: the app's Sign out ends its own session, then the portal login itself."""
    user = cast(User, UserFactory(email="rp-logout@example.com", full_name="Rita Logout"))
    mortgage = start_rp("Mortgage app", trusted=True)
    page = tab.page
    sign_in(tab, user.email)

    _open(tab, mortgage.url + "/")
    page.get_by_role("button", name="Sign in with the bank").click()
    _back_at(tab, mortgage)
    expect(page.get_by_text("You are signed in to Mortgage app through the bank")).to_be_visible()
    assert _claim(tab, "Level") == "urn:bank-portal:acr:password"
    assert _claim(tab, "Methods") == "pwd"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(re.escape(mortgage.url) + r"/\?state="))
    tab.check()
    expect(page.get_by_text("You are signed out of Mortgage app and of the bank.")).to_be_visible()
    expect(page.get_by_text("You are not signed in.")).to_be_visible()

    # The portal login is over too: its pages ask for the password again.
    tab.goto("/")
    expect(page).to_have_url(re.compile(re.escape(base_url) + r"/accounts/login/"))
    assert "oidc.logout" in audit_types(user), audit_types(user)
