"""Helpers for the audit tests: events in bulk, tampering as the database owner, staff logins."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User, UserSession
from audit.events import EventType, Outcome
from audit.models import AuditEvent


def make_events(n: int, *, start: datetime | None = None, step_seconds: float = 1.0, **fields: Any) -> list[AuditEvent]:
    start = start or timezone.now() - timedelta(hours=1)
    base = {"type": EventType.LOGIN_FAILED, "outcome": Outcome.FAILURE, "ip": "198.51.100.7", "country": "NL"}
    base.update(fields)
    return AuditEvent.objects.bulk_create(
        [AuditEvent(occurred_at=start + timedelta(seconds=i * step_seconds), **base) for i in range(n)],
        batch_size=5000,
    )


@contextmanager
def trigger_disabled() -> Iterator[Any]:
    """As the database owner: switch the append-only trigger off, as an insider with DDL rights could."""
    with connection.cursor() as cursor:
        # The test runs in a transaction: run the deferred foreign-key checks before ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        try:
            yield cursor
        finally:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def web_login(client: Client, user: User, *, amr: list[str] | None = None) -> None:
    """A logged-in web session as accounts.services.session_start leaves it (registry row, sid, amr)."""
    from accounts.services import session_key_hash

    client.force_login(user, backend="accounts.backends.EmailBackend")
    session = client.session
    row = UserSession.objects.create(
        user=user, kind=UserSession.Kind.WEB, session_key_hash=session_key_hash(session.session_key or "")
    )
    now = time.time()
    session["sid"] = str(row.id)
    session["auth_time"] = now
    session["touched"] = now
    session["last_activity"] = now
    session["amr"] = amr or ["pwd"]
    session.save()
