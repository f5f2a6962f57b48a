from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from audit.models import AuditEvent


def events_for_user(*, user: Any, limit: int = 20) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(user=user).order_by("-occurred_at", "-id")[:limit]
