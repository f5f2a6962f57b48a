"""Monthly partitions of the audit log (PostgreSQL declarative partitioning by `occurred_at`).

Migration 0005 turns `audit_auditevent` into a table partitioned by range of `occurred_at`, one
partition per calendar month (UTC) named `audit_auditevent_yYYYYmMM`, plus a DEFAULT partition that
catches an event whose month has no partition yet (a clock far off), so that writing an event
never fails for want of a partition. Partitions are created ahead of time: at migrate time and
by the daily beat task / `manage.py audit_partitions`, AUDIT_PARTITION_MONTHS_AHEAD months ahead.

What partitioning keeps:
- the append-only trigger is defined on the partitioned table, and PostgreSQL clones it onto every
  partition, including those created later: UPDATE/DELETE are refused on a partition too;
- ids come from one identity sequence on the partitioned table, so the hash chain (audit/chain.py,
  by id) is unaware of partitions;
- the primary key is (id, occurred_at) and the public id is unique with occurred_at (PostgreSQL
  requires the partition key in unique constraints); ids are from one sequence and public ids are
  random UUIDs, so both stay unique in practice; Django's model state keeps `id` as the key.

SQLite (make run's dev mode) keeps the plain table: every function here is a no-op there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLE = "audit_auditevent"
DEFAULT_PARTITION = f"{TABLE}_default"


def months_ahead() -> int:
    return int(getattr(settings, "AUDIT_PARTITION_MONTHS_AHEAD", 3))


def month_start(value: datetime | date) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return value.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + (month.month - 1) + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE])
        return cur.fetchone() is not None


@dataclass(frozen=True)
class Partition:
    name: str
    bounds: str  # PostgreSQL's own description: FOR VALUES FROM (...) TO (...) / DEFAULT
    rows: int  # estimate (pg_class.reltuples), -1 before the first ANALYZE


def list_partitions() -> list[Partition]:
    if not is_partitioned():
        return []
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
            [TABLE],
        )
        return [Partition(name, bounds, int(rows)) for name, bounds, rows in cur.fetchall()]


def _create_month(cur: object, month: date) -> None:
    name = partition_name(month)
    end = add_months(month, 1)
    # Identifiers and bounds come from dates formatted above, never from input.
    cur.execute(  # type: ignore[attr-defined]
        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{TABLE}" '
        f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
    )


def ensure_partitions(*, now: datetime | None = None, ahead: int | None = None, since: date | None = None) -> list[str]:
    """Creates the missing monthly partitions from `since` (default: this month) to `ahead` months
    after this one; returns the names created. A month whose range already holds rows in the
    DEFAULT partition cannot be created (PostgreSQL refuses): it is logged and left there, and
    those rows stay readable and sealed as any other."""
    if not is_partitioned():
        return []
    current = month_start(now or timezone.now())
    first = month_start(since) if since else current
    last = add_months(current, months_ahead() if ahead is None else ahead)
    existing = {p.name for p in list_partitions()}
    created: list[str] = []
    month = first
    while month <= last:
        name = partition_name(month)
        if name not in existing:
            try:
                with transaction.atomic(), connection.cursor() as cur:
                    # Creating a partition locks the parent briefly; never queue behind a long
                    # transaction (and make every writer queue behind us) for more than this.
                    cur.execute("SET LOCAL lock_timeout = '5s'")
                    _create_month(cur, month)
                created.append(name)
            except DatabaseError as exc:
                logger.error("audit partition %s not created: %s", name, exc)
        month = add_months(month, 1)
    if created:
        logger.info("audit partitions created", extra={"partitions": created})
    return created
