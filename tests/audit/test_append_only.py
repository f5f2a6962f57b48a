from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.events import EventType
from audit.models import AppendOnlyError, AuditEvent
from audit.services import record


def test_update_and_delete_fail_at_the_database(user):
    event = record(type=EventType.LOGIN_SUCCEEDED, user=user)
    for sql in (
        "UPDATE audit_auditevent SET reason = 'edited' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.id])
    event.refresh_from_db()
    assert event.reason == ""


def test_the_model_refuses_changes_too(user):
    event = record(type=EventType.LOGIN_SUCCEEDED, user=user)
    event.reason = "edited"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_audit_rows_roll_back_with_their_action(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        record(type=EventType.PASSWORD_CHANGED, user=user)
        raise RuntimeError("the action failed")
    assert not AuditEvent.objects.filter(type=EventType.PASSWORD_CHANGED).exists()


def test_details_refuse_secrets(user):
    with pytest.raises(ValueError):
        record(type=EventType.LOGIN_FAILED, user=user, details={"password": "hunter2"})
    with pytest.raises(ValueError):
        record(type=EventType.LOGIN_FAILED, user=user, details={"otp_code": "123456"})
