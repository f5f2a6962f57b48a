"""The one way to write an audit event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models, transaction

from audit.events import EventType, Outcome
from audit.models import AuditEvent
from core import context, metrics
from core.logging import redact_value
from core.sql import insert_rows

_FORBIDDEN_DETAIL_KEYS = ("password", "code", "token", "secret", "otp", "refresh", "access", "cookie")


def _clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    if not details:
        return {}
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        if any(word in key.lower() for word in _FORBIDDEN_DETAIL_KEYS):
            raise ValueError(f"audit details must not carry secrets (key {key!r})")
        cleaned[key] = redact_value(key, value) if isinstance(value, str) else value
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
