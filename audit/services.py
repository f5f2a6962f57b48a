"""The one way to write an audit event."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.events import EventType, Outcome
from audit.models import AuditEvent
from core import context, metrics
from core.logging import redact_value

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
    ctx = context.current()
    user_obj = user if getattr(user, "pk", None) else None
    actor_obj = actor if getattr(actor, "pk", None) else user_obj
    # savepoint=False: inside the caller's transaction the row commits or rolls back with it
    # (a failed insert fails the action), and no SAVEPOINT/RELEASE round trips per event.
    with transaction.atomic(savepoint=False):
        event = AuditEvent.objects.create(
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
        # Counted where the row is written (no on-commit hook: callers and tests see only their own);
        # an event whose transaction later rolls back is counted too, which only happens when the
        # action itself failed.
        metrics.security_event(str(type), str(outcome), detail=_metric_detail(type, reason, details))
        return event
