"""The accounts app's own stage of the login pipeline (accounts/pipeline.py)."""

from __future__ import annotations

from django.urls import reverse

from accounts import passwords
from accounts.pipeline import Login, LoginAttempt, Stage
from audit.events import EventType, Outcome
from audit.services import record

GATE = "password_change_required"


class BreachedPasswordStage(Stage):
    """A password found in a breach list still signs in (it was right), then must be changed first.

    First in LOGIN_STAGES: it needs the password, which the attempt holds only until the first
    pause. The web session is held on the change-password page (accounts.password_change); the
    API answers the tokens with `password_change_required: true`.
    """

    key = "breached_password"

    def run(self, attempt: LoginAttempt) -> None:
        password = attempt.facts.get("_password")
        if isinstance(password, str) and password and passwords.is_breached(password):
            attempt.gates.append(GATE)

    def after_login(self, attempt: LoginAttempt, login: Login) -> str | None:
        if GATE not in attempt.gates:
            return None
        record(
            type=EventType.PASSWORD_BREACHED,
            user=attempt.user,
            outcome=Outcome.INFO,
            reason="breach_list",
            details={"sid": login.sid, "channel": attempt.channel},
        )
        if attempt.channel == "api" or attempt.request is None:
            return None
        passwords.require_password_change(attempt.request)
        return reverse("accounts:password_change")
