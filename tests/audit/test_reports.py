"""Reports at /reports/: security group only; filters, SVG charts, suspicious activity, streamed CSV."""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.events import EventType, Outcome
from audit.models import AuditEvent
from tests.audit.helpers import make_events

PAGES = ("/reports/", "/reports/suspicious/", "/reports/events.csv")


@pytest.fixture
def security_client(make_role_user: Callable[..., User], role_client: Callable[[User], Client]) -> Client:
    return role_client(make_role_user("security"))


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_sent_to_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("role", ["customer", "support"])
def test_outside_the_security_group_is_refused(
    make_role_user: Callable[..., User], role_client: Callable[[User], Client], role: str, path: str
) -> None:
    response = role_client(make_role_user(role)).get(path)
    assert response.status_code == 403


@pytest.mark.parametrize("role", ["security", "admin"])
def test_security_and_admin_see_reports(
    make_role_user: Callable[..., User], role_client: Callable[[User], Client], role: str
) -> None:
    client = role_client(make_role_user(role))
    response = client.get("/reports/")
    assert response.status_code == 200
    assert 'href="/reports/"' in response.content.decode()  # the nav link (perms.audit.view_reports)


def test_charts_are_inline_svg_without_scripts_or_styles(security_client: Client, user: User) -> None:
    now = timezone.now()
    make_events(4, start=now - timedelta(hours=2), type=EventType.LOGIN_FAILED, user=user)
    make_events(1, start=now - timedelta(hours=1), type=EventType.LOCKOUT, outcome=Outcome.DENIED, user=user)
    make_events(2, start=now - timedelta(hours=3), type="mfa.failed", outcome=Outcome.FAILURE)
    make_events(3, start=now - timedelta(hours=1), type="payment.step_up_passed", outcome=Outcome.SUCCESS)
    make_events(1, start=now - timedelta(hours=1), type="payment.step_up_failed", outcome=Outcome.FAILURE)
    make_events(2, start=now - timedelta(hours=1), type="risk.new_device", outcome=Outcome.INFO)
    make_events(
        5, start=now - timedelta(hours=1), type=EventType.LOGIN_SUCCEEDED, outcome=Outcome.SUCCESS, country="DE"
    )
    body = security_client.get("/reports/").content.decode()
    assert body.count("<svg") == 5
    for text in (
        "Failed logins (4)",
        "Lockouts (1)",
        "MFA failures (2)",
        "Step-ups passed (3)",
        "Step-ups failed (1)",
        "New-device logins (2)",
    ):
        assert text in body
    assert ">DE</text>" in body
    # The charts need no script: the page carries only the site-wide file scripts (no inline ones).
    scripts = re.findall(r"<script[^>]*>", body)
    assert all(' src="/static/' in tag for tag in scripts), scripts
    assert all("<script" not in svg for svg in re.findall(r"<svg.*?</svg>", body, flags=re.S))
    assert "style=" not in body
    assert "<style" not in body


def test_filters_narrow_the_events(security_client: Client, make_role_user: Callable[..., User]) -> None:
    alice = make_role_user("customer")
    now = timezone.now()
    make_events(3, start=now - timedelta(hours=1), user=alice, ip="192.0.2.1", country="FR")
    make_events(2, start=now - timedelta(hours=1), ip="192.0.2.2", country="NL")
    make_events(2, start=now - timedelta(days=3), user=alice)  # outside the default 24 h
    body = security_client.get("/reports/", {"user": alice.email.upper()}).content.decode()
    assert "Events (3" in body
    body = security_client.get("/reports/", {"ip": "192.0.2.2", "outcome": "failure", "country": "nl"}).content.decode()
    assert "Events (2" in body
    since = (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    body = security_client.get("/reports/", {"since": since, "user": str(alice.public_id)}).content.decode()
    assert "Events (5" in body
    body = security_client.get("/reports/", {"type": "auth."}).content.decode()
    assert "Events (5" in body


def test_bad_filters_are_form_errors_not_500(security_client: Client) -> None:
    response = security_client.get("/reports/", {"since": "yesterday-ish", "ip": "999.1.1.1", "type": "DROP TABLE"})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert security_client.get("/reports/events.csv", {"until": "nope"}).status_code == 400


def test_last_verified_checkpoint_is_shown(security_client: Client) -> None:
    from audit import chain

    make_events(3, start=timezone.now() - timedelta(minutes=10))
    chain.seal_pending()
    chain.verify()
    body = security_client.get("/reports/").content.decode()
    assert "Last verified" in body and "checkpoint #1" in body


def test_suspicious_activity(security_client: Client, make_role_user: Callable[..., User], settings: object) -> None:
    now = timezone.now()
    victims = [make_role_user("customer") for _ in range(5)]
    for victim in victims:
        make_events(2, start=now - timedelta(minutes=30), user=victim, ip="203.0.113.66")
    make_events(
        1,
        start=now - timedelta(minutes=20),
        type="risk.impossible_travel",
        outcome=Outcome.DENIED,
        user=victims[0],
        country="BR",
    )
    make_events(
        1, start=now - timedelta(minutes=10), type="token.reuse_detected", outcome=Outcome.DENIED, user=victims[1]
    )
    make_events(1, start=now - timedelta(minutes=5), type=EventType.LOCKOUT, outcome=Outcome.DENIED, user=victims[2])
    body = security_client.get("/reports/suspicious/").content.decode()
    assert "203.0.113.66" in body
    assert "Impossible travel (1)" in body
    assert "token.reuse_detected" in body
    assert "Lockouts (1)" in body


def test_csv_export_filters_and_neutralises_formulas(security_client: Client, user: User) -> None:
    now = timezone.now()
    make_events(2, start=now - timedelta(days=400), user=user, reason='=HYPERLINK("http://evil")')
    make_events(3, start=now - timedelta(hours=1))
    response = security_client.get("/reports/events.csv", {"user": user.email})
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["occurred_at", "event_id", "type"]
    assert len(rows) == 3  # any range: the 400-day-old events are included
    assert all(row[5] == user.email for row in rows[1:])
    assert all(row[11].startswith("'=") for row in rows[1:])
    exported = AuditEvent.objects.get(type=EventType.AUDIT_EXPORTED)
    assert exported.details["user"] == user.email


def test_csv_export_of_100k_events_streams_in_chunks(security_client: Client) -> None:
    total = 100_000
    make_events(total, start=timezone.now() - timedelta(days=30), step_seconds=0.5, reason="bulk")
    response = security_client.get("/reports/events.csv")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    rows = 0
    chunks = 0
    tracemalloc.start()
    try:
        for chunk in response.streaming_content:
            rows += chunk.count(b"\n")
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 1 + total + 1  # header, every event, and the export's own audit row
    assert chunks > 100  # sent piece by piece
    # 100 000 rows as model instances or one list would take well over 100 MB; chunks stay small.
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    print(f"CSV export of {total} events: {chunks} chunks, peak {peak / 1e6:.1f} MB")
