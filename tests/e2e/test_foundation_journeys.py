"""Journeys 1, 5 and 6 (issue 8): sign-up with email verification, lockout, the session limit."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.e2e.conftest import Browsing, Tab
from tests.e2e.pages import PASSWORD, audit_trail, audit_types, find_link, sign_in, submit_password

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_signup_verify_login_dashboard(tab: Tab, emails: Callable[..., list[Any]]) -> None:
    page = tab.goto("/accounts/login/")
    tab.screenshot("login")
    page.get_by_role("link", name="Open an account").click()
    tab.check()
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    _strength_meter_agrees_with_the_server(tab)
    page.locator("#id_new_password1").fill(PASSWORD)
    page.locator("#id_new_password2").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    tab.check()

    (message,) = [m for m in emails("ada@example.com") if "/accounts/verify/" in m.body]
    link = find_link(message, "/accounts/verify/")
    page.goto(link)
    expect(page.get_by_role("heading", name="Your email address is verified")).to_be_visible()
    tab.check()
    assert User.objects.get(email="ada@example.com").email_verified

    page.get_by_role("link", name="Sign in").click()
    tab.check()
    submit_password(tab, "ada@example.com")
    tab.check()
    if tab.path.startswith("/security/mfa/welcome/"):
        page.get_by_role("button", name=re.compile("not now|later|skip", re.I)).click()
        tab.check()
    expect(page.get_by_role("heading", name="Hello, Ada")).to_be_visible()
    expect(page.get_by_role("heading", name="Your accounts")).to_be_visible()
    # The production cookie flags hold: Chromium accepts Secure cookies from http://localhost.
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["bp_session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict", session
    assert cookies["bp_csrftoken"]["secure"], cookies["bp_csrftoken"]
    types = audit_types(User.objects.get(email="ada@example.com"))
    for expected in ("account.signup", "account.email_verified", "auth.login_succeeded"):
        assert expected in types, types


# Passwords for the meter's check, with the person's own name and address among them.
METER_CORPUS = [
    "ada lovelace 1815",
    "adalovelace1815",
    "Lovelace!Ada",
    "ada@example.com",
    "monkeymonkey12",
    "summer2024summer",
    "qwertyuiop123",
    "P@ssw0rd2024!",
    "Tr0ub4dor&3",
    "correct horse battery staple",
    "analytical-engine-1843",
    "19850312ada",
    "zxcvbnm,./;'[]",
    "aaaaaaaaaaaaaaaa",
    "Xq7!vL2#pR9z",
    "bankportal-secure-1",
    "margarethe2024!",
    "élan vital ça va",
]


def _strength_meter_agrees_with_the_server(tab: Tab) -> None:
    """The meter (static/js/password-strength.js, vendored zxcvbn.js) says in words what the server's
    StrengthValidator will decide, keeps working with the password shown, and scores every password
    of a corpus exactly as the server does, with the same guessable words (the name and email typed)."""
    from accounts.passwords import min_strength_score, password_strength, strength_user_inputs

    page = tab.page
    field = page.locator("#id_new_password1")
    verdict = page.locator("#id_new_password1-strength-text")
    expect(page.locator("#id_new_password1-strength")).to_be_visible()
    expect(verdict).to_have_attribute("aria-live", "polite")
    assert "id_new_password1-strength-text" in (field.get_attribute("aria-describedby") or "")
    field.fill("monkeymonkey12")
    expect(verdict).to_contain_text("Not strong enough yet: at least 3 of 4 is needed.")
    expect(verdict).to_contain_text("Strength: Weak (1 of 4).")
    page.get_by_role("button", name="Show password").first.click()
    assert field.get_attribute("type") == "text"
    field.fill(PASSWORD)
    expect(verdict).to_contain_text("Strong enough.")
    expect(verdict).to_contain_text("(4 of 4)")
    page.get_by_role("button", name="Hide password").first.click()
    assert field.get_attribute("type") == "password"
    tab.check()

    inputs = strength_user_inputs("ada@example.com", "Ada Lovelace")
    browser = page.evaluate(
        """(corpus) => {
            const el = document.getElementById("id_new_password1");
            const values = el.getAttribute("data-strength-fields").split(" ")
                .map((id) => document.getElementById(id).value);
            const inputs = window.bankPortalPasswordStrength.userInputs(values);
            return {inputs, scores: corpus.map((p) => window.zxcvbn(p, inputs).score)};
        }""",
        METER_CORPUS,
    )
    assert browser["inputs"] == inputs
    server = [password_strength(p, inputs).score for p in METER_CORPUS]
    assert browser["scores"] == server, list(zip(METER_CORPUS, browser["scores"], server, strict=True))
    threshold = min_strength_score()
    assert threshold is not None and {s >= threshold for s in server} == {True, False}


def test_five_wrong_passwords_lock_the_account(tab: Tab) -> None:
    user = cast(User, UserFactory(email="locked@example.com"))
    page = tab.goto("/accounts/login/")
    for attempt in range(1, 6):
        if attempt <= 3:
            expect(page.locator("altcha-widget")).to_have_count(0)
        else:
            # From the fourth attempt the proof-of-work check shows; it solves in the browser.
            widget = page.locator("altcha-widget")
            expect(widget).to_be_visible()
            page.get_by_role("checkbox").click()
            expect(widget.locator("[data-state='verified']")).to_be_attached(timeout=30_000)
        submit_password(tab, user.email, "not the password")
        tab.check()
        if attempt < 5:
            expect(page.locator("#login-error")).to_contain_text("not correct")
    tab.allow_console(r"status of 429")
    error = page.locator("#login-error")
    expect(error).to_contain_text("sign-in is paused")
    expect(error).to_contain_text(re.compile(r"Try again after \d\d:\d\d UTC"))
    shown = re.search(r"after (\d\d):(\d\d) UTC", error.inner_text())
    assert shown, error.inner_text()
    retry_at = timezone.now() + settings.AXES_COOLOFF_TIME
    minutes_shown = int(shown.group(1)) * 60 + int(shown.group(2))
    minutes_expected = retry_at.hour * 60 + retry_at.minute
    assert min(abs(minutes_shown - minutes_expected), 1440 - abs(minutes_shown - minutes_expected)) <= 1
    # Even the right password is refused now.
    submit_password(tab, user.email, PASSWORD)
    tab.check()
    expect(page.locator("#login-error")).to_contain_text("sign-in is paused")
    tab.screenshot("login-locked")
    types = audit_types(user)
    assert types.count("auth.login_failed") >= 5 and "auth.lockout" in types, types
    assert "auth.login_succeeded" not in types, types


def test_second_login_ends_the_first_session(browsing: Browsing) -> None:
    assert settings.SESSION_CONCURRENT_LIMIT == 1
    user = cast(User, UserFactory(email="twice@example.com"))
    first = browsing.new_tab("first")
    sign_in(first, user.email)
    second = browsing.new_tab("second")
    sign_in(second, user.email)

    first.page.get_by_role("link", name="Security", exact=True).click()
    expect(first.page).to_have_url(re.compile(r"/accounts/login/\?reason=session_limit"))
    first.check()
    expect(first.page.locator("#login-notice")).to_contain_text("signed in somewhere else")
    assert ("auth.session_ended", "success", "session_limit") in audit_trail(user), audit_trail(user)

    second.goto("/security/")
    expect(second.page.get_by_role("heading", level=1)).to_have_text("Security")
