"""Prometheus metrics (issue 17, item 4): who may read them, and that they count what happened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.events import EventType, Outcome
from audit.services import record
from core import metrics


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _scrape(**extra: Any) -> Any:
    return Client(REMOTE_ADDR="127.0.0.1", **extra).get("/metrics")


def test_metrics_are_refused_to_the_outside_and_served_inside_or_with_the_token(settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    outside = Client(REMOTE_ADDR="203.0.113.10")
    refused = outside.get("/metrics")
    assert refused.status_code == 404 and b"bp_" not in refused.content
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 404
    assert outside.post("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789").status_code == 404
    with_token = outside.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert with_token.status_code == 200 and b"bp_http_requests_total" in with_token.content
    assert with_token["Content-Type"].startswith("text/plain; version=")
    inside = _scrape()
    assert inside.status_code == 200 and inside["Cache-Control"] == "no-store"
    # The host header is not even looked at (Prometheus scrapes replicas by address).
    assert _scrape(HTTP_HOST="10.0.0.7:8000").status_code == 200


def test_through_the_proxy_the_client_address_decides_not_the_proxy_address(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.METRICS_ALLOWED_CIDRS = "127.0.0.1/32,172.31.20.0/24"
    via_proxy = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert via_proxy.get("/metrics").status_code == 404
    spoofed = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="172.31.20.5, 203.0.113.9")
    assert spoofed.get("/metrics").status_code == 404
    prometheus = Client(REMOTE_ADDR="172.31.20.4")  # a direct scrape on the internal network
    assert prometheus.get("/metrics").status_code == 200


def test_requests_are_counted_and_timed_per_view(client: Client) -> None:
    labels = {"view": "accounts:login", "method": "GET", "status": "200"}
    before = _value("bp_http_requests_total", **labels)
    timed = _value("bp_http_request_duration_seconds_count", view="accounts:login", method="GET")
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/login/").status_code == 200
    assert _value("bp_http_requests_total", **labels) == before + 2
    assert _value("bp_http_request_duration_seconds_count", view="accounts:login", method="GET") == timed + 2
    missing = _value("bp_http_requests_total", view="unresolved", method="GET", status="404")
    client.get("/no-such-page/")
    assert _value("bp_http_requests_total", view="unresolved", method="GET", status="404") == missing + 1
    page = _scrape().content.decode()
    assert 'bp_http_requests_total{method="GET",status="200",view="accounts:login"}' in page


def test_security_events_are_counted_where_they_are_audited(client: Client, user: Any, password: str) -> None:
    failed = {"type": "auth.login_failed", "outcome": "failure", "detail": "bad_credentials"}
    succeeded = {"type": "auth.login_succeeded", "outcome": "success", "detail": ""}
    before_failed, before_ok = (
        _value("bp_security_events_total", **failed),
        _value("bp_security_events_total", **succeeded),
    )
    client.post("/accounts/login/", {"email": user.email, "password": "not-the-password-1"})
    assert client.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    assert _value("bp_security_events_total", **failed) == before_failed + 1
    assert _value("bp_security_events_total", **succeeded) == before_ok + 1

    # Per second-factor method; a staff member's free-text reason never becomes a label.
    totp = {"type": "mfa.failed", "outcome": "failure", "detail": "totp"}
    before_totp = _value("bp_security_events_total", **totp)
    record(type=EventType.MFA_FAILED, outcome=Outcome.FAILURE, user=user, details={"method": "totp"})
    record(type=EventType.ADMIN_SESSIONS_ENDED, user=user, reason="fraud")
    assert _value("bp_security_events_total", **totp) == before_totp + 1
    assert _value("bp_security_events_total", type="admin.sessions_ended", outcome="success", detail="fraud") == 0
    assert _value("bp_security_events_total", type="admin.sessions_ended", outcome="success", detail="") >= 1


def test_an_event_is_counted_as_its_row_is_written(user: Any, django_capture_on_commit_callbacks: Any) -> None:
    labels = {"type": "token.reuse_detected", "outcome": "denied", "detail": ""}
    before = _value("bp_security_events_total", **labels)
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        record(type=EventType.TOKEN_REUSE_DETECTED, outcome=Outcome.DENIED, user=user)
        assert _value("bp_security_events_total", **labels) == before + 1
    assert callbacks == []  # nothing added to the caller's on-commit work


def test_captcha_checks_are_counted_by_result() -> None:
    from accounts import security

    before = _value("bp_captcha_checks_total", result="missing")
    assert not security.captcha_verify("").ok
    assert _value("bp_captcha_checks_total", result="missing") == before + 1


def test_outbox_backlog_and_chain_status_are_read_at_scrape_time(user: Any, time_machine: Any) -> None:
    from audit import chain
    from core.crypto import encrypt
    from notifications.models import OutboxMessage

    time_machine.move_to(timezone.now(), tick=False)
    page = _scrape().content.decode()
    assert 'bp_outbox_messages{status="pending"} 0.0' in page
    assert "bp_outbox_oldest_pending_age_seconds 0.0" in page
    assert "bp_audit_chain_ok -1.0" in page  # never verified yet

    OutboxMessage.objects.create(
        channel=OutboxMessage.Channel.EMAIL, purpose="test", recipient=user.email, body_encrypted=encrypt("hi")
    )
    time_machine.shift(timedelta(seconds=90))
    chain.verify()
    page = _scrape().content.decode()
    assert 'bp_outbox_messages{status="pending"} 1.0' in page
    assert "bp_outbox_oldest_pending_age_seconds 90.0" in page
    assert "bp_audit_chain_ok 1.0" in page
    assert 'bp_metrics_reader_up{reader="outbox"} 1.0' in page


def test_a_failing_reader_does_not_fail_the_scrape() -> None:
    def broken() -> Any:
        raise RuntimeError("database away")

    metrics.register_reader("zz_broken", broken)
    try:
        response = _scrape()
    finally:
        metrics._readers.pop("zz_broken")
    assert response.status_code == 200
    assert 'bp_metrics_reader_up{reader="zz_broken"} 0.0' in response.content.decode()
