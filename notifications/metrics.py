"""Outbox gauges for Prometheus, read at scrape time (core.metrics.register_reader)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from notifications.models import OutboxMessage


def outbox_gauges() -> Iterator[GaugeMetricFamily]:
    """One indexed aggregate over the unsent messages (the sent ones are never scanned)."""
    unsent = OutboxMessage.objects.filter(status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.FAILED])
    found = unsent.aggregate(
        pending=Count("id", filter=Q(status=OutboxMessage.Status.PENDING)),
        failed=Count("id", filter=Q(status=OutboxMessage.Status.FAILED)),
        oldest=Min("created_at", filter=Q(status=OutboxMessage.Status.PENDING)),
    )
    backlog = GaugeMetricFamily("bp_outbox_messages", "Outbox messages not sent, by status.", labels=["status"])
    backlog.add_metric(["pending"], found["pending"] or 0)
    backlog.add_metric(["failed"], found["failed"] or 0)
    yield backlog
    oldest = found["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    yield GaugeMetricFamily(
        "bp_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox message (0 when none).", value=age
    )
