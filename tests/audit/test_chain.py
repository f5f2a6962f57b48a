"""The hash chain: sealing off the request path, and verification that names the first bad event."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit import chain
from audit.events import EventType
from audit.models import AppendOnlyError, AuditCheckpoint, AuditEvent, ChainVerification
from tests.audit.helpers import make_events, trigger_disabled


def _sealed_log(n: int = 30) -> list[AuditEvent]:
    events = make_events(n, start=timezone.now() - timedelta(minutes=10))
    assert chain.seal_pending() == n
    return events


def test_clean_log_verifies_and_is_recorded() -> None:
    events = _sealed_log(30)
    result = chain.verify()
    assert result.ok, result.describe()
    assert result.events == 30
    assert result.last_checkpoint is not None and result.last_checkpoint.last_event_id == events[-1].id
    latest = ChainVerification.objects.first()
    assert latest is not None and latest.ok and latest.last_event_id == events[-1].id
    call_command("audit_verify")  # exit 0


def test_checkpoints_chain_to_each_other(settings: Any) -> None:
    settings.AUDIT_SEAL_BATCH_SIZE = 7
    _sealed_log(20)
    checkpoints = list(AuditCheckpoint.objects.order_by("seq"))
    assert [c.event_count for c in checkpoints] == [7, 7, 6]
    assert checkpoints[0].prev_hash == chain.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(checkpoints))
    assert chain.verify().ok


def test_recent_events_wait_for_the_settle_delay() -> None:
    old = make_events(3, start=timezone.now() - timedelta(minutes=5))
    # A fresh event, then an older-looking one with a higher id (a commit that came late):
    # only the contiguous settled prefix is sealed.
    make_events(1, start=timezone.now())
    make_events(1, start=timezone.now() - timedelta(minutes=5))
    assert chain.seal_pending() == 3
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.last_event_id == old[-1].id
    result = chain.verify()
    assert result.ok and result.unsealed == 2


def test_no_hashing_on_the_request_path() -> None:
    from audit.services import record

    record(type=EventType.LOGIN_SUCCEEDED)
    assert AuditCheckpoint.objects.count() == 0


def test_altered_event_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    events = _sealed_log(30)
    victim = events[12]
    with trigger_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'nothing to see' WHERE id = %s", [victim.id])
    result = chain.verify()
    assert not result.ok
    assert result.problem is not None
    assert result.problem.kind == "altered" and result.problem.event_id == victim.id
    with pytest.raises(CommandError) as excinfo:
        call_command("audit_verify")
    assert excinfo.value.returncode == 1
    assert f"event {victim.id} was altered" in str(excinfo.value)
    failed = ChainVerification.objects.first()
    assert failed is not None and not failed.ok and failed.event_id == victim.id
    assert AuditEvent.objects.filter(type=EventType.AUDIT_CHAIN_BROKEN).exists()


def test_deleted_event_is_named() -> None:
    events = _sealed_log(30)
    victim = events[5]
    with trigger_disabled() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [victim.id])
    result = chain.verify()
    assert result.problem is not None
    assert (result.problem.kind, result.problem.event_id) == ("missing", victim.id)


def test_inserted_event_is_named() -> None:
    first = make_events(1, start=timezone.now() - timedelta(minutes=10))[0]
    # A gap in the ids (e.g. a rolled-back transaction), then more events; all sealed.
    last = AuditEvent.objects.create(
        id=first.id + 10, type=EventType.LOGIN_SUCCEEDED, occurred_at=timezone.now() - timedelta(minutes=9)
    )
    assert chain.seal_pending() == 2
    forged = AuditEvent.objects.create(
        id=first.id + 4, type=EventType.LOGIN_SUCCEEDED, occurred_at=timezone.now() - timedelta(minutes=10)
    )
    assert last.id > forged.id
    result = chain.verify()
    assert result.problem is not None
    assert (result.problem.kind, result.problem.event_id) == ("inserted", forged.id)


def test_edited_checkpoint_is_detected() -> None:
    _sealed_log(5)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER audit_checkpoint_append_only")
        cursor.execute("UPDATE audit_auditcheckpoint SET hash = %s", ["f" * 64])
        cursor.execute("ALTER TABLE audit_auditcheckpoint ENABLE TRIGGER audit_checkpoint_append_only")
    result = chain.verify()
    assert result.problem is not None and result.problem.kind == "checkpoint"


def test_checkpoints_are_append_only() -> None:
    _sealed_log(3)
    checkpoint = AuditCheckpoint.objects.get()
    with pytest.raises(AppendOnlyError):
        checkpoint.save()
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditcheckpoint")


def test_beat_tasks_are_scheduled(settings: object) -> None:
    from django.conf import settings as django_settings

    tasks = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"audit.tasks.audit_seal", "audit.tasks.audit_verify"} <= tasks
    from audit.tasks import audit_seal, audit_verify

    make_events(2, start=timezone.now() - timedelta(minutes=2))
    assert audit_seal.delay().get() == 2
    assert audit_verify.delay().get() is True


def test_a_rewritten_chain_disagrees_with_its_anchor(caplog: pytest.LogCaptureFixture) -> None:
    """An insider who rewrites a row AND recomputes every checkpoint is caught by the logged anchor."""
    import logging

    caplog.set_level(logging.INFO, logger="audit.chain")
    _sealed_log(5)
    anchor = next(r for r in caplog.records if r.getMessage() == "audit checkpoint sealed")
    seq, digest = anchor.checkpoint_seq, anchor.checkpoint_hash  # type: ignore[attr-defined]
    call_command("audit_verify", anchor=[f"{seq}:{digest}"])
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER audit_checkpoint_append_only")
        cursor.execute("DELETE FROM audit_auditcheckpoint")
        cursor.execute("ALTER TABLE audit_auditcheckpoint ENABLE TRIGGER audit_checkpoint_append_only")
    with trigger_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'rewritten'")
    chain.seal_pending()  # the insider re-seals: the chain itself is consistent again
    # An incremental run notices that the checkpoint it would start from is not the one verified.
    incremental = chain.verify()
    assert incremental.problem is not None and "changed since it was verified" in incremental.problem.message
    assert chain.verify(full=True).ok
    with pytest.raises(CommandError, match="differs from its anchor"):
        call_command("audit_verify", anchor=[f"{seq}:{digest}"])
    with pytest.raises(CommandError, match="SEQ:HASH"):
        call_command("audit_verify", anchor=["nonsense"])


def test_an_event_dated_far_in_the_future_does_not_stop_sealing() -> None:
    make_events(2, start=timezone.now() - timedelta(minutes=5))
    make_events(1, start=timezone.now() + timedelta(days=365))
    make_events(2, start=timezone.now() - timedelta(minutes=5))
    assert chain.seal_pending() == 5
    assert chain.verify().ok


# --- Incremental verification: from the last verified checkpoint --------------------------------


def test_incremental_run_starts_at_the_last_verified_checkpoint(settings: Any) -> None:
    settings.AUDIT_SEAL_BATCH_SIZE = 10
    _sealed_log(30)
    first = chain.verify()
    assert first.ok and first.full and first.events_read == 30 and first.checkpoints == 3
    make_events(7, start=timezone.now() - timedelta(minutes=5))
    assert chain.seal_pending() == 7
    second = chain.verify()
    assert second.ok, second.describe()
    # Only the 7 new events were read, starting after checkpoint #3; the totals still cover all.
    assert (second.full, second.start_seq, second.checkpoints_read, second.events_read) == (False, 3, 1, 7)
    assert (second.checkpoints, second.events) == (4, 37)
    recorded = ChainVerification.objects.order_by("-ran_at", "-id").first()
    assert recorded is not None and not recorded.full and recorded.started_at_seq == 3
    assert recorded.events_read == 7 and recorded.events == 37 and recorded.last_checkpoint_seq == 4
    # Nothing new: nothing read.
    third = chain.verify()
    assert third.ok and third.events_read == 0 and third.start_seq == 4


def test_a_tampered_old_event_is_found_by_full_not_by_incremental(settings: Any) -> None:
    settings.AUDIT_SEAL_BATCH_SIZE = 10
    events = _sealed_log(20)
    call_command("audit_verify")  # passes; the next runs start after checkpoint #2
    victim = events[3]
    with trigger_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'rewritten later' WHERE id = %s", [victim.id])
    make_events(5, start=timezone.now() - timedelta(minutes=5))
    chain.seal_pending()
    incremental = chain.verify()
    assert incremental.ok and incremental.events_read == 5  # the old rows are not read again
    with pytest.raises(CommandError, match=f"event {victim.id} was altered"):
        call_command("audit_verify", full=True)
    # Once a run has failed, the next one is a full run again: the failure is not forgotten.
    after = chain.verify()
    assert not after.ok and after.full and after.problem is not None and after.problem.event_id == victim.id


def test_full_is_the_daily_beat_task() -> None:
    from django.conf import settings as django_settings

    from audit.tasks import audit_verify_full

    tasks = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "audit.tasks.audit_verify_full" in tasks
    _sealed_log(4)
    assert audit_verify_full.delay().get() is True
    latest = ChainVerification.objects.order_by("-ran_at", "-id").first()
    assert latest is not None and latest.full and latest.events_read == 4


def test_incremental_run_notices_a_deleted_starting_checkpoint() -> None:
    _sealed_log(5)
    assert chain.verify().ok
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditcheckpoint DISABLE TRIGGER audit_checkpoint_append_only")
        cursor.execute("DELETE FROM audit_auditcheckpoint")
        cursor.execute("ALTER TABLE audit_auditcheckpoint ENABLE TRIGGER audit_checkpoint_append_only")
    result = chain.verify()
    assert result.problem is not None and "chain truncated" in result.problem.message
