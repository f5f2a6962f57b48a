"""Idle and absolute timeouts end the login through accounts.services.session_end: audit row and revocation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts import revocation
from accounts.models import User, UserSession
from audit.events import EventType
from audit.models import AuditEvent


@pytest.mark.parametrize(
    ("idle", "reason"),
    [
        (timedelta(minutes=30, seconds=1), "idle"),  # SESSION_IDLE_TIMEOUT
        (None, "expired"),  # SESSION_ABSOLUTE_TIMEOUT, active every 29 minutes
    ],
)
def test_a_timed_out_session_is_ended_audited_and_revoked(
    client: Client, user: User, login: Callable[..., Any], time_machine: Any, idle: timedelta | None, reason: str
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    login(client, user)
    sid = client.session["sid"]
    if idle is not None:
        time_machine.shift(idle)
    else:
        for _ in range(24):  # active every 29 minutes, never idle
            time_machine.shift(timedelta(minutes=29))
            assert client.get("/security/").status_code == 200
        time_machine.shift(timedelta(minutes=29))  # 12 h 5 min after the login
    response = client.get("/")
    assert response.status_code == 302 and f"reason={reason}" in response["Location"]

    row = UserSession.objects.get(id=sid)
    assert row.ended_at is not None and row.end_reason == reason
    event = AuditEvent.objects.get(type=EventType.SESSION_ENDED, user=user)
    assert event.reason == reason and event.details["sid"] == sid
    assert revocation.revoked_reason(sid) == reason
    # The next request of that cookie is on the login page, and ends nothing twice.
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(type=EventType.SESSION_ENDED, user=user).count() == 1
