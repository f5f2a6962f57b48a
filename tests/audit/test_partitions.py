"""The audit log partitioned by month (PostgreSQL): routing, append-only partitions, the chain
across a month boundary, partitions created ahead, and the migration converting a filled table."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import chain, partitions
from audit.models import AuditEvent
from tests.audit.helpers import make_events, trigger_disabled


def _partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM audit_auditevent WHERE id = %s", [event_id])
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def _month(offset: int) -> datetime:
    start = partitions.add_months(partitions.month_start(timezone.now()), offset)
    return datetime(start.year, start.month, 1, tzinfo=UTC)


def test_the_table_is_partitioned_with_months_ahead() -> None:
    assert partitions.is_partitioned()
    names = {p.name for p in partitions.list_partitions()}
    assert partitions.DEFAULT_PARTITION in names
    for offset in range(partitions.months_ahead() + 1):
        assert partitions.partition_name(_month(offset).date()) in names


def test_rows_land_in_their_month_partition() -> None:
    this_month = make_events(1, start=_month(0) + timedelta(hours=1))[0]
    next_month = make_events(1, start=_month(1) + timedelta(hours=1))[0]
    far_future = make_events(1, start=_month(partitions.months_ahead() + 24))[0]
    assert _partition_of(this_month.id) == partitions.partition_name(_month(0).date())
    assert _partition_of(next_month.id) == partitions.partition_name(_month(1).date())
    # A month without a partition (a clock years off) is caught by the default partition:
    # writing an event never fails for want of a partition.
    assert _partition_of(far_future.id) == partitions.DEFAULT_PARTITION
    assert AuditEvent.objects.filter(id__in=[this_month.id, next_month.id, far_future.id]).count() == 3


@pytest.mark.parametrize("target", ["month", "default"])
def test_a_partition_refuses_update_and_delete(target: str) -> None:
    when = _month(0) + timedelta(hours=2) if target == "month" else _month(partitions.months_ahead() + 24)
    event = make_events(1, start=when)[0]
    table = _partition_of(event.id)
    assert table != "audit_auditevent"
    for sql in (f"UPDATE {table} SET reason = 'edited' WHERE id = %s", f"DELETE FROM {table} WHERE id = %s"):  # noqa: S608
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.id])
    # Moving a row to another month is an UPDATE too.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET occurred_at = occurred_at - interval '40 days' WHERE id = %s", [event.id]
        )
    assert AuditEvent.objects.get(id=event.id).reason == ""


def test_partitions_created_later_refuse_changes_too() -> None:
    later = _month(partitions.months_ahead() + 6)
    created = partitions.ensure_partitions(ahead=partitions.months_ahead() + 6)
    assert partitions.partition_name(later.date()) in created
    assert partitions.ensure_partitions(ahead=partitions.months_ahead() + 6) == []  # idempotent
    event = make_events(1, start=later + timedelta(days=3))[0]
    table = _partition_of(event.id)
    assert table == partitions.partition_name(later.date())
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [event.id])  # noqa: S608


def test_a_month_whose_rows_wait_in_the_default_partition_is_reported_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stray = _month(partitions.months_ahead() + 12)
    make_events(1, start=stray + timedelta(days=1))
    caplog.set_level(logging.ERROR, logger="audit.partitions")
    created = partitions.ensure_partitions(ahead=partitions.months_ahead() + 12)
    name = partitions.partition_name(stray.date())
    assert name not in created
    assert partitions.partition_name(_month(partitions.months_ahead() + 11).date()) in created
    assert any(name in record.getMessage() for record in caplog.records)


def test_the_chain_verifies_across_a_month_boundary(settings: Any, time_machine: Any) -> None:
    settings.AUDIT_SEAL_BATCH_SIZE = 25
    before, boundary = _month(0), _month(1)
    time_machine.move_to(boundary + timedelta(hours=1), tick=False)
    events = make_events(60, start=boundary - timedelta(seconds=30))
    months = {_partition_of(e.id) for e in events}
    assert months == {partitions.partition_name(before.date()), partitions.partition_name(boundary.date())}
    assert chain.seal_pending() == 60
    result = chain.verify(full=True)
    assert result.ok, result.describe()
    assert result.events == 60 and result.checkpoints == 3
    # Tampering on either side of the boundary is found and named.
    victim = events[31]  # the first seconds of the new month
    assert _partition_of(victim.id) == partitions.partition_name(boundary.date())
    with trigger_disabled() as cursor:
        cursor.execute("UPDATE audit_auditevent SET country = 'XX' WHERE id = %s", [victim.id])
    result = chain.verify(full=True)
    assert result.problem is not None and (result.problem.kind, result.problem.event_id) == ("altered", victim.id)


def test_audit_partitions_command_creates_and_lists(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("audit_partitions", months_ahead=partitions.months_ahead() + 2)
    out = capsys.readouterr().out
    assert partitions.partition_name(_month(partitions.months_ahead() + 2).date()) in out
    assert "Created 2 partition(s)" in out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="between 0 and 120"):
        call_command("audit_partitions", months_ahead=-1)


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_a_filled_table_and_back() -> None:
    """0005 on a table that already holds events of several months: ids, rows and the trigger kept."""
    try:
        call_command("migrate", "audit", "0004", verbosity=0)
        assert not partitions.is_partitioned()
        old = [timezone.now() - timedelta(days=days) for days in (70, 40, 10, 0)]
        made = make_events(1, start=old[0]) + make_events(1, start=old[1]) + make_events(2, start=old[2])
        call_command("migrate", "audit", verbosity=0)
        assert partitions.is_partitioned()
        kept = list(AuditEvent.objects.order_by("id").values_list("id", "public_id", "occurred_at"))
        assert kept == [(e.id, e.public_id, e.occurred_at) for e in made]
        assert _partition_of(made[0].id) == partitions.partition_name(partitions.month_start(old[0]))
        newer = make_events(1, start=old[3])[0]
        assert newer.id > made[-1].id  # the identity sequence continued
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [made[0].id])
        # And back to a plain table (rows kept), then forward again for the other tests.
        call_command("migrate", "audit", "0004", verbosity=0)
        assert not partitions.is_partitioned()
        assert AuditEvent.objects.count() == 5
    finally:
        call_command("migrate", "audit", verbosity=0)
    assert partitions.is_partitioned()


def test_the_reports_indexes_are_on_every_partition() -> None:
    """The fraud rate's partial indexes (audit/0007) exist on each month, later ones included."""
    later = partitions.partition_name(_month(partitions.months_ahead() + 4).date())
    partitions.ensure_partitions(ahead=partitions.months_ahead() + 4)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE tablename LIKE 'audit_auditevent_%%' "
            "AND indexdef LIKE '%%payment.completed%%'"
        )
        rows = cursor.fetchall()
    by_table: dict[str, list[str]] = {}
    for table, definition in rows:
        by_table.setdefault(table, []).append(definition)
    for name in (partitions.partition_name(_month(0).date()), later, partitions.DEFAULT_PARTITION):
        definitions = by_table.get(name, [])
        assert any("INCLUDE (details)" in d for d in definitions), name
        assert any("->> 'payment'" in d for d in definitions), name
