"""Issue 13 item 8: sign-up with a taken address and password reset for an unknown one do the same
work as their counterparts (same SQL statements, same argon2 hashes, same token, same email
rendering, same queued delivery), so their timing tells an attacker nothing. Counted, never timed."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.hashers import ConfigurableArgon2PasswordHasher
from accounts.models import User
from audit.events import EventType, Outcome
from audit.models import AuditEvent
from core import cached, metrics
from notifications.models import OutboxMessage

PW = "a long and unusual passphrase"
_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"([a-z_]+)"', re.IGNORECASE)


def _statement(sql: str) -> str:
    """SELECT accounts_user, INSERT audit_auditevent, SAVEPOINT, END SAVEPOINT, ..."""
    verb = sql.split(None, 1)[0].upper()
    if verb == "RELEASE" or sql.upper().startswith("ROLLBACK TO SAVEPOINT"):
        return "END SAVEPOINT"  # released (kept) or rolled back (undone): one statement either way
    table = _TABLE.search(sql)
    return f"{verb} {table.group(1)}" if table else verb


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Counts (never replaces) the real argon2 calls and reset tokens made inside `measure()`."""
    calls: Counter[str] = Counter()
    encode, verify = ConfigurableArgon2PasswordHasher.encode, ConfigurableArgon2PasswordHasher.verify
    make_token = default_token_generator.make_token

    def counting_encode(self: Any, password: str, salt: str) -> str:
        calls["argon2 encode"] += 1
        return encode(self, password, salt)

    def counting_verify(self: Any, password: str, encoded: str) -> bool:
        calls["argon2 verify"] += 1
        return verify(self, password, encoded)

    def counting_make_token(user: Any) -> str:
        calls["reset token"] += 1
        return make_token(user)

    monkeypatch.setattr(ConfigurableArgon2PasswordHasher, "encode", counting_encode)
    monkeypatch.setattr(ConfigurableArgon2PasswordHasher, "verify", counting_verify)
    monkeypatch.setattr(default_token_generator, "make_token", counting_make_token)

    @contextmanager
    def measure(capture_on_commit: Any) -> Iterator[dict[str, Any]]:
        calls.clear()
        result: dict[str, Any] = {}
        with CaptureQueriesContext(connection) as queries, capture_on_commit() as callbacks:
            yield result
        result["statements"] = Counter(_statement(q["sql"]) for q in queries.captured_queries)
        result["statement_count"] = len(queries.captured_queries)
        result["calls"] = Counter(calls)
        # Not the security counters (core.metrics), which every audited event adds on commit, nor
        # the caches' invalidation at commit (core.cached).
        result["delivery_tasks_queued"] = len(
            [
                cb
                for cb in callbacks
                if getattr(cb, "func", None) not in (metrics.security_event, cached.regenerate_after_commit)
            ]
        )
        result["callbacks"] = callbacks

    return measure


def _templates(response: Any) -> list[str]:
    return sorted(t.name for t in response.templates if t.name and t.name.startswith("emails/"))


def test_signup_with_a_taken_address_does_the_work_of_a_new_account(
    make_client, user, work, django_capture_on_commit_callbacks
):
    def signup(email: str) -> tuple[Any, dict[str, Any]]:
        client = make_client(ip="203.0.113.60")
        with work(django_capture_on_commit_callbacks) as measured:
            response = client.post(
                "/accounts/signup/",
                {"full_name": "Pat Example", "email": email, "new_password1": PW, "new_password2": PW},
            )
        return response, measured

    users_before = User.objects.count()
    taken, taken_work = signup(user.email)
    fresh, fresh_work = signup("pat.example@example.com")

    assert taken.status_code == fresh.status_code == 302 and taken["Location"] == fresh["Location"]
    assert taken_work["calls"] == fresh_work["calls"] == Counter({"argon2 encode": 1})
    assert taken_work["statement_count"] == fresh_work["statement_count"]
    assert taken_work["statements"] == fresh_work["statements"]
    assert taken_work["statements"]["INSERT accounts_user"] == 1  # written, then rolled back
    assert taken_work["statements"]["INSERT accounts_user_groups"] == 1
    assert taken_work["delivery_tasks_queued"] == fresh_work["delivery_tasks_queued"] == 1
    assert len(_templates(taken)) == len(_templates(fresh)) == 4  # subject, text, html and its layout

    # What stays is only what should: one new account, the owner told, nothing else.
    assert User.objects.count() == users_before + 1
    assert not User.objects.filter(email__endswith="@signup.invalid").exists()
    assert set(OutboxMessage.objects.values_list("purpose", "recipient")) == {
        ("signup_existing", user.email),
        ("email_verification", "pat.example@example.com"),
    }
    denied = AuditEvent.objects.get(type=EventType.SIGNUP, outcome=Outcome.DENIED)
    assert denied.user == user and denied.reason == "email_in_use"
    assert AuditEvent.objects.filter(type=EventType.SIGNUP).count() == 2


def test_password_reset_for_an_unknown_address_does_the_work_of_a_real_one(
    make_client, user, work, django_capture_on_commit_callbacks
):
    def reset(email: str) -> tuple[Any, dict[str, Any]]:
        client = make_client(ip="203.0.113.61")
        with work(django_capture_on_commit_callbacks) as measured:
            response = client.post("/accounts/password/reset/", {"email": email})
        return response, measured

    known, known_work = reset(user.email)
    unknown, unknown_work = reset("nobody.here@example.com")

    assert known.status_code == unknown.status_code == 302 and known["Location"] == unknown["Location"]
    assert known_work["calls"] == unknown_work["calls"] == Counter({"reset token": 1})
    assert known_work["statement_count"] == unknown_work["statement_count"]
    assert known_work["statements"] == unknown_work["statements"]
    assert unknown_work["statements"]["INSERT notifications_outboxmessage"] == 1  # written, then rolled back
    assert known_work["delivery_tasks_queued"] == unknown_work["delivery_tasks_queued"] == 1
    assert (
        _templates(known)
        == _templates(unknown)
        == [
            "emails/_layout.html",
            "emails/password_reset.html",
            "emails/password_reset.txt",
            "emails/password_reset_subject.txt",
        ]
    )

    # Only the real request leaves a message; the stand-in's queued delivery sends nothing.
    assert list(OutboxMessage.objects.values_list("purpose", "recipient")) == [("password_reset", user.email)]
    for callback in unknown_work["callbacks"]:
        callback()
    assert mail.outbox == []
    for callback in known_work["callbacks"]:
        callback()
    assert [m.to for m in mail.outbox] == [[user.email]]
    assert AuditEvent.objects.filter(type=EventType.PASSWORD_RESET_REQUESTED, user=user).count() == 1
    assert (
        AuditEvent.objects.filter(
            type=EventType.PASSWORD_RESET_REQUESTED, outcome=Outcome.INFO, reason="unknown_email"
        ).count()
        == 1
    )


def test_an_inactive_account_is_treated_like_an_unknown_address(make_client, user, run_outbox):
    user.is_active = False
    user.save(update_fields=["is_active"])
    make_client(ip="203.0.113.62").post("/accounts/password/reset/", {"email": user.email})
    run_outbox()
    assert mail.outbox == [] and not OutboxMessage.objects.exists()
