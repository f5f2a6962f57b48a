"""The one way to write an audit event."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, models, transaction

from audit.events import EventType, Outcome
from audit.models import AuditEvent
from core import context, metrics, sql
from core.logging import SENSITIVE_KEYS, redact
from core.sql import insert_rows

_FORBIDDEN_DETAIL_KEYS = ("password", "code", "token", "secret", "otp", "refresh", "access", "cookie")


# Verdicts on detail keys, per key: the keys come from code (a few dozen), so each is checked once
# per process. Bounded all the same, in case a caller ever builds keys from data.
_KEY_VERDICTS: dict[str, tuple[bool, bool]] = {}
_KEY_VERDICTS_MAX = 4096
# A string of these characters, without "eyJ", matches none of core.logging's redaction patterns
# (each needs whitespace, one of : = / #, or a JWT's "eyJ"): ids, amounts, currencies, codes of
# reasons. tests/audit/test_details.py checks the claim against core.logging.redact_value.
_INERT = re.compile(r"[0-9A-Za-z.,*+_-]*")


def _key_verdict(key: str) -> tuple[bool, bool]:
    """(forbidden: the key names a secret, so the event is refused; redacted: its value is hidden)."""
    verdict = _KEY_VERDICTS.get(key)
    if verdict is None:
        lowered = key.lower()
        verdict = (any(word in lowered for word in _FORBIDDEN_DETAIL_KEYS), bool(SENSITIVE_KEYS.search(key)))
        if len(_KEY_VERDICTS) < _KEY_VERDICTS_MAX:
            _KEY_VERDICTS[key] = verdict
    return verdict


@lru_cache(maxsize=2048)
def _redacted_text(value: str) -> str:
    return redact(value)


def _redacted(value: str) -> str:
    """core.logging.redact(value), without running its patterns on a string none can match, and
    remembered for short strings (articles, rule traces, masked IBANs repeat from event to event)."""
    if _INERT.fullmatch(value) and "eyJ" not in value:
        return value
    return _redacted_text(value) if len(value) <= 256 else redact(value)


def _clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """The details as stored: refused if a key names a secret; a string value redacted as
    core.logging.redact_value redacts it (the whole value under a sensitive key)."""
    if not details:
        return {}
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        forbidden, hidden = _key_verdict(key)
        if forbidden:
            raise ValueError(f"audit details must not carry secrets (key {key!r})")
        if isinstance(value, str):
            value = "[REDACTED]" if hidden else _redacted(value)
        cleaned[key] = value
    return cleaned


def _metric_detail(type: str, reason: str, details: dict[str, Any] | None) -> str:
    """What the security counters split an event by: the second-factor method, the SCA exemption,
    or the reason code (never a staff member's written reason)."""
    found = (details or {}).get("method") or (details or {}).get("exemption")
    if not found and not str(type).startswith("admin."):
        found = reason
    return str(found or "")


def event(
    *,
    type: EventType,
    outcome: Outcome = Outcome.SUCCESS,
    user: Any = None,
    actor: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    country: str | None = None,
) -> AuditEvent:
    """An audit event, not yet written (`record_many` writes it): the same checks and context as record()."""
    ctx = context.current()
    user_obj = user if getattr(user, "pk", None) else None
    actor_obj = actor if getattr(actor, "pk", None) else user_obj
    return AuditEvent(
        type=type,
        outcome=outcome,
        user=user_obj,
        actor=actor_obj,
        ip=ip if ip is not None else ctx.ip,
        ua_family=ctx.ua_family[:64],
        country=(country if country is not None else ctx.country)[:8],
        reason=reason[:255],
        request_id=ctx.request_id,
        details=_clean_details(details),
    )


def _counted(event: AuditEvent) -> None:
    # Counted where the row is written (no on-commit hook: callers and tests see only their own);
    # an event whose transaction later rolls back is counted too, which only happens when the
    # action itself failed.
    metrics.security_event(
        str(event.type), str(event.outcome), detail=_metric_detail(event.type, event.reason, event.details)
    )


def record(
    *,
    type: EventType,
    outcome: Outcome = Outcome.SUCCESS,
    user: Any = None,
    actor: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    country: str | None = None,
) -> AuditEvent:
    """Write one audit event inside the caller's transaction.

    IP, user-agent family, country and request id come from the current request unless given.
    `actor` defaults to `user` (the user acted on their own account).
    """
    built = event(
        type=type, outcome=outcome, user=user, actor=actor, reason=reason, details=details, ip=ip, country=country
    )
    # savepoint=False: inside the caller's transaction the row commits or rolls back with it
    # (a failed insert fails the action), and no SAVEPOINT/RELEASE round trips per event.
    with transaction.atomic(savepoint=False):
        built.save(force_insert=True)
        _counted(built)
        return built


def record_many(
    events: Sequence[AuditEvent],
    *,
    rows: Sequence[models.Model] = (),
    also: Sequence[tuple[str, Sequence[Any]]] = (),
) -> None:
    """Writes audit events built by event(), and the action's own new rows, in one statement.

    For hot paths whose action is a few new rows (a login: its session and token; a refresh: the
    successor token): the rows and their events commit or roll back together in the caller's
    transaction, as with record(), and cost one round trip instead of one per row. The rows are
    written without save() or model signals, `also` holds the action's UPDATEs (see
    core.sql.insert_rows); the events get no primary key back (nothing on these paths reads it).
    """
    if not events:
        raise ValueError("record_many needs at least one event")
    with transaction.atomic(savepoint=False):
        insert_rows([*rows, *events], also=also)
        for built in events:
            _counted(built)


def insert_statement(events: Sequence[AuditEvent], *, using: str = DEFAULT_DB_ALIAS) -> tuple[str, list[Any]]:
    """One INSERT of events built by event(), as (SQL, parameters), for a hot path that runs it
    inside its own statement (a data-modifying CTE beside the action's writes, PostgreSQL), in
    its transaction: the events commit or roll back with the action, as with record(). The values
    are prepared by each field as the ORM prepares them. Once the statement ran, the caller calls
    written(); the events get no primary key back."""
    if not events:
        raise ValueError("insert_statement needs at least one event")
    for built in events:
        if type(built) is not AuditEvent or not built._state.adding:
            raise ValueError("insert_statement writes new audit events only")
    return sql.insert_statement(events, using=using)


def written(events: Sequence[AuditEvent], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """After insert_statement's statement ran: the events are saved rows, and counted."""
    sql.mark_saved(events, using=using)
    for built in events:
        _counted(built)
