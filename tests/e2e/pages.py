"""Small page-level helpers shared by the journeys (Playwright sync API)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Tab

PASSWORD = "correct horse battery staple"


def audit_trail(user: Any) -> list[tuple[str, str, str]]:
    """(type, outcome, reason) of the user's audit events, oldest first: what the journey left behind."""
    from audit.models import AuditEvent

    rows = AuditEvent.objects.filter(user=user).order_by("id").values_list("type", "outcome", "reason")
    return [(str(t), str(o), str(r)) for t, o, r in rows]


def audit_types(user: Any) -> list[str]:
    return [t for t, _, _ in audit_trail(user)]


def email_body(message: Any) -> str:
    return str(message.body)


def find_link(message: Any, path_prefix: str) -> str:
    match = re.search(r"https?://[^\s\"'<>]+?" + re.escape(path_prefix) + r"[^\s\"'<>]*", email_body(message))
    assert match, f"no link to {path_prefix} in:\n{email_body(message)}"
    return match.group(0)


def find_code(message: Any) -> str:
    match = re.search(r"\b(\d{6})\b", email_body(message))
    assert match, f"no 6-digit code in:\n{email_body(message)}"
    return match.group(1)


def submit_password(tab: Tab, email: str, password: str = PASSWORD) -> None:
    """Fills the login form of the current page and submits it (no check of the outcome)."""
    page = tab.page
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def sign_in_password(tab: Tab, email: str, password: str = PASSWORD) -> None:
    """The password step from the login page; leaves the browser wherever the portal sends it."""
    tab.goto("/accounts/login/")
    submit_password(tab, email, password)
    tab.check()


def sign_out(tab: Tab) -> None:
    tab.page.get_by_role("banner").get_by_role("button", name="Sign out", exact=True).click()
    expect(tab.page).to_have_url(re.compile(r"/accounts/login/\?reason=logout"))
    tab.check()


def sign_in(tab: Tab, email: str, password: str = PASSWORD) -> None:
    """Password login from the login page to the dashboard (skipping the optional MFA invitation)."""
    tab.goto("/accounts/login/")
    submit_password(tab, email, password)
    tab.check()
    if tab.path.startswith("/security/mfa/welcome/"):
        tab.page.get_by_role("button", name=re.compile("not now|later|skip", re.I)).click()
        tab.page.wait_for_load_state("load")
        tab.check()
    expect(tab.page).to_have_url(tab.url("/"))
