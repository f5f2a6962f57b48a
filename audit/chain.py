"""Tamper evidence: audit events sealed into a hash chain of checkpoints, and its verification.

Sealing runs in a periodic Celery beat task (audit.tasks.audit_seal), never on the request
path: writing an event takes no lock and computes no hash.

Each checkpoint covers the next events by id after the previous checkpoint:
    hash = sha256(prev_hash + canonical(event_1) + ... + canonical(event_n))   (events in id order)
and keeps [id, sha256(canonical(event))] per event so verification names the first bad event.

Ids are allocated at INSERT but become visible at COMMIT, so a slow transaction can commit
id 100 after id 101 is visible. The sealer therefore only seals a contiguous prefix (by id)
of events older than AUDIT_SEAL_SETTLE_SECONDS, and never beyond the start of the oldest
still-open writing transaction on the database (PostgreSQL). An id that is missing when a
batch is sealed (a rolled-back transaction) is a gap, not an event; a row that shows up in a
sealed range later is reported as inserted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEvent, ChainVerification

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
CANONICAL_FIELDS = (
    "id",
    "public_id",
    "occurred_at",
    "type",
    "outcome",
    "actor_id",
    "user_id",
    "ip",
    "ua_family",
    "country",
    "reason",
    "request_id",
    "details",
)
_ADVISORY_LOCK_KEY = 7_420_001  # one sealer at a time; the unique `seq` also prevents a fork
_MAX_FUTURE_SECONDS = 3600


def settle_seconds() -> int:
    return int(getattr(settings, "AUDIT_SEAL_SETTLE_SECONDS", 30))


def batch_size() -> int:
    return int(getattr(settings, "AUDIT_SEAL_BATCH_SIZE", 5000))


def _normalise(key: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if key == "public_id" and value is not None:
        return str(value)
    return value


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes an event contributes to the chain: sorted-key compact JSON of every column."""
    data = {key: _normalise(key, row[key]) for key in CANONICAL_FIELDS}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def event_digest(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def _event_rows(*, after_id: int, up_to_id: int | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    qs = AuditEvent.objects.filter(id__gt=after_id)
    if up_to_id is not None:
        qs = qs.filter(id__lte=up_to_id)
    qs = qs.order_by("id")
    if limit is not None:
        qs = qs[:limit]
    return qs.values(*CANONICAL_FIELDS).iterator(chunk_size=2000)


def _oldest_open_write_transaction() -> datetime | None:
    """Start of the oldest other transaction on this database that has written something."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(xact_start) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] else None


def _try_lock() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        row = cursor.fetchone()
    return bool(row and row[0])


def seal_batch(*, now: datetime | None = None, limit: int | None = None) -> AuditCheckpoint | None:
    """Seals the next batch of settled events into a new checkpoint; None when there is nothing to seal."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settle_seconds())
    with transaction.atomic():
        if not _try_lock():
            return None
        oldest_open = _oldest_open_write_transaction()
        if oldest_open is not None and oldest_open < cutoff:
            cutoff = oldest_open
        last = AuditCheckpoint.objects.order_by("-seq").first()
        prev_hash = last.hash if last else GENESIS_HASH
        after_id = last.last_event_id if last else 0
        chain = hashlib.sha256(prev_hash.encode())
        entries: list[list[Any]] = []
        far_future = now + timedelta(seconds=_MAX_FUTURE_SECONDS)
        for row in _event_rows(after_id=after_id, limit=limit or batch_size()):
            if cutoff <= row["occurred_at"] <= far_future:
                break  # a contiguous prefix only: a later id may be followed by a slower commit
            if row["occurred_at"] > far_future:
                # A clock far ahead must not stop sealing for good: seal it, and say so.
                logger.warning("audit event %s is dated in the future; sealed anyway", row["id"])
            data = canonical(row)
            chain.update(data)
            entries.append([row["id"], hashlib.sha256(data).hexdigest()])
        if not entries:
            return None
        checkpoint = AuditCheckpoint.objects.create(
            seq=(last.seq + 1) if last else 1,
            created_at=now,
            first_event_id=entries[0][0],
            last_event_id=entries[-1][0],
            event_count=len(entries),
            prev_hash=prev_hash,
            hash=chain.hexdigest(),
            entries=entries,
        )
    # An anchor outside the database: the log pipeline keeps every checkpoint's hash, so rows
    # rewritten together with recomputed checkpoints still disagree with the logged anchors
    # (`manage.py audit_verify --anchor SEQ:HASH`).
    logger.info(
        "audit checkpoint sealed",
        extra={
            "checkpoint_seq": checkpoint.seq,
            "checkpoint_hash": checkpoint.hash,
            "last_event_id": checkpoint.last_event_id,
            "event_count": checkpoint.event_count,
        },
    )
    return checkpoint


def seal_pending(*, now: datetime | None = None, max_batches: int = 50) -> int:
    """Seals batches until nothing settled is left (or max_batches); returns the events sealed."""
    sealed = 0
    for _ in range(max_batches):
        checkpoint = seal_batch(now=now)
        if checkpoint is None:
            break
        sealed += checkpoint.event_count
    return sealed


@dataclass
class Problem:
    kind: str  # "altered", "inserted", "missing", "checkpoint"
    message: str
    event_id: int | None = None
    checkpoint_seq: int | None = None


@dataclass
class VerifyResult:
    ok: bool
    checkpoints: int  # checkpoints known good through `last_checkpoint` (in total, not only this run's)
    events: int  # events sealed in them
    last_checkpoint: AuditCheckpoint | None
    problem: Problem | None = None
    unsealed: int = 0
    full: bool = True
    start_seq: int = 0  # incremental: the already verified checkpoint this run started after
    checkpoints_read: int = 0
    events_read: int = 0  # audit rows this run read: what its cost grows with

    def describe(self) -> str:
        if self.problem is not None:
            return self.problem.message
        last = self.last_checkpoint
        through = f" through event {last.last_event_id} (checkpoint #{last.seq})" if last else ""
        how = "full check" if self.full else f"incremental from checkpoint #{self.start_seq}"
        return (
            f"OK ({how}, {self.events_read} events read): {self.checkpoints} checkpoints, {self.events} events "
            f"verified{through}; {self.unsealed} not sealed yet."
        )


class _Counted:
    """Counts the rows an iterator yields (what verification read from the audit table)."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows = rows
        self.n = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.n += 1
            yield row


def _check_checkpoint(
    checkpoint: AuditCheckpoint, *, prev_hash: str, after_id: int, rows: Iterable[dict[str, Any]]
) -> Problem | None:
    seq = checkpoint.seq
    entries = [(int(pair[0]), str(pair[1])) for pair in checkpoint.entries]
    chain = hashlib.sha256(prev_hash.encode())
    index = 0
    for row in rows:
        event_id = int(row["id"])
        data = canonical(row)
        chain.update(data)
        while index < len(entries) and entries[index][0] < event_id:
            missing = entries[index][0]
            return Problem("missing", f"event {missing} is missing (deleted) from checkpoint #{seq}", missing, seq)
        if index >= len(entries) or entries[index][0] != event_id:
            return Problem("inserted", f"event {event_id} was inserted into checkpoint #{seq}", event_id, seq)
        if hashlib.sha256(data).hexdigest() != entries[index][1]:
            return Problem("altered", f"event {event_id} was altered after checkpoint #{seq}", event_id, seq)
        index += 1
    if index < len(entries):
        missing = entries[index][0]
        return Problem("missing", f"event {missing} is missing (deleted) from checkpoint #{seq}", missing, seq)
    if chain.hexdigest() != checkpoint.hash or len(entries) != checkpoint.event_count:
        return Problem("checkpoint", f"checkpoint #{seq} does not match its own events (checkpoint edited)", None, seq)
    if entries and (entries[0][0] != checkpoint.first_event_id or entries[-1][0] != checkpoint.last_event_id):
        return Problem("checkpoint", f"checkpoint #{seq} has an edited event range", None, seq)
    return None


@dataclass
class _Start:
    checkpoint: AuditCheckpoint | None = None
    checkpoints: int = 0
    events: int = 0
    problem: Problem | None = None


def _incremental_start() -> _Start | None:
    """Where an incremental run starts: the checkpoint the latest verification ended on, provided
    that verification passed and the checkpoint still has the hash it had then. None: a full run
    is needed (no verification yet, or the latest one failed: a broken chain stays reported as
    broken until a full run says otherwise)."""
    latest = ChainVerification.objects.order_by("-ran_at", "-id").first()
    if latest is None or not latest.ok or latest.last_checkpoint_seq is None or not latest.last_checkpoint_hash:
        return None
    seq = latest.last_checkpoint_seq
    checkpoint = AuditCheckpoint.objects.filter(seq=seq).defer("entries").first()
    if checkpoint is None:
        return _Start(problem=Problem("checkpoint", f"checkpoint #{seq} is missing (chain truncated)", None, seq))
    if checkpoint.hash != latest.last_checkpoint_hash or checkpoint.last_event_id != latest.last_event_id:
        return _Start(
            problem=Problem(
                "checkpoint", f"checkpoint #{seq} changed since it was verified (chain rewritten)", None, seq
            )
        )
    return _Start(checkpoint=checkpoint, checkpoints=latest.checkpoints, events=latest.events)


def verify(*, record_result: bool = True, anchors: dict[int, str] | None = None, full: bool = False) -> VerifyResult:
    """Recomputes the chain; stops at the first altered, inserted or missing event.

    Incremental by default: from the checkpoint the last passing verification ended on, so its
    cost grows with the events sealed since, not with the whole log. `full=True` recomputes
    everything from the genesis hash (what finds an old event altered after it was verified).
    `anchors` (checkpoint seq -> hash, e.g. from the logs) must match the stored checkpoints.
    """
    start = None if full else _incremental_start()
    problem: Problem | None = start.problem if start else None
    last: AuditCheckpoint | None = start.checkpoint if start else None
    prev_hash = last.hash if last else GENESIS_HASH
    after_id = last.last_event_id if last else 0
    start_seq = last.seq if last else 0
    checkpoints = start.checkpoints if start and last else 0
    events = start.events if start and last else 0
    checkpoints_read = events_read = 0
    if problem is None and anchors and start_seq:
        # Anchors of checkpoints verified before: compared with the stored hashes, no event read.
        earlier = [seq for seq in anchors if seq <= start_seq]
        stored = dict(AuditCheckpoint.objects.filter(seq__in=earlier).values_list("seq", "hash"))
        for seq in sorted(earlier):
            if stored.get(seq) != anchors[seq]:
                problem = Problem(
                    "checkpoint", f"checkpoint #{seq} differs from its anchor (chain rewritten)", None, seq
                )
                break
    queryset = AuditCheckpoint.objects.filter(seq__gt=start_seq).order_by("seq")
    for checkpoint in queryset.iterator(chunk_size=20) if problem is None else ():
        expected = start_seq + checkpoints_read + 1
        if checkpoint.seq != expected:
            problem = Problem("checkpoint", f"checkpoint #{expected} is missing", None, expected)
            break
        if checkpoint.prev_hash != prev_hash:
            problem = Problem(
                "checkpoint", f"checkpoint #{checkpoint.seq} does not follow the previous one", None, checkpoint.seq
            )
            break
        anchor = (anchors or {}).get(checkpoint.seq)
        if anchor is not None and anchor != checkpoint.hash:
            problem = Problem(
                "checkpoint",
                f"checkpoint #{checkpoint.seq} differs from its anchor (chain rewritten)",
                None,
                checkpoint.seq,
            )
            break
        rows = _Counted(_event_rows(after_id=after_id, up_to_id=checkpoint.last_event_id))
        problem = _check_checkpoint(checkpoint, prev_hash=prev_hash, after_id=after_id, rows=rows)
        events_read += rows.n
        if problem is not None:
            break
        checkpoints_read += 1
        checkpoints += 1
        events += checkpoint.event_count
        prev_hash = checkpoint.hash
        after_id = checkpoint.last_event_id
        last = checkpoint
    last_seq = last.seq if last else 0
    if problem is None and anchors and max(anchors) > last_seq:
        missing = max(anchors)
        problem = Problem(
            "checkpoint", f"checkpoint #{missing} is anchored but missing (chain truncated)", None, missing
        )
    unsealed = AuditEvent.objects.filter(id__gt=after_id).count() if problem is None else 0
    result = VerifyResult(
        ok=problem is None,
        checkpoints=checkpoints,
        events=events,
        last_checkpoint=last,
        problem=problem,
        unsealed=unsealed,
        full=start is None,
        start_seq=start_seq,
        checkpoints_read=checkpoints_read,
        events_read=events_read,
    )
    if record_result:
        _record(result)
    return result


def _record(result: VerifyResult) -> None:
    from audit.events import EventType, Outcome
    from audit.services import record

    problem = result.problem
    with transaction.atomic():
        ChainVerification.objects.create(
            ok=result.ok,
            checkpoints=result.checkpoints,
            events=result.events,
            last_checkpoint_seq=result.last_checkpoint.seq if result.last_checkpoint else None,
            last_event_id=result.last_checkpoint.last_event_id if result.last_checkpoint else None,
            last_checkpoint_hash=result.last_checkpoint.hash if result.last_checkpoint else "",
            full=result.full,
            started_at_seq=result.start_seq if not result.full else None,
            events_read=result.events_read,
            problem=problem.kind if problem else "",
            event_id=problem.event_id if problem else None,
            message=result.describe()[:2000],
        )
        if problem is not None:
            logger.error("audit chain verification failed: %s", problem.message)
            record(
                type=EventType.AUDIT_CHAIN_BROKEN,
                outcome=Outcome.FAILURE,
                reason=problem.kind,
                details={
                    "message": problem.message,
                    "event_id": problem.event_id,
                    "checkpoint": problem.checkpoint_seq,
                },
            )
