"""Audit chain gauges for Prometheus, read at scrape time (core.metrics.register_reader)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from audit.models import ChainVerification


def chain_gauges() -> Iterator[GaugeMetricFamily]:
    """The latest verification of the hash chain (beat task or `manage.py audit_verify`)."""
    last = ChainVerification.objects.order_by("-ran_at", "-id").only("ok", "ran_at", "events").first()
    status = GaugeMetricFamily(
        "bp_audit_chain_ok", "1 when the last audit chain verification passed, 0 when it failed, -1 when none ran yet."
    )
    status.add_metric([], -1 if last is None else int(last.ok))
    yield status
    yield GaugeMetricFamily(
        "bp_audit_chain_verified_timestamp_seconds",
        "When the audit chain was last verified (Unix time, 0 when never).",
        value=last.ran_at.timestamp() if last else 0,
    )
    yield GaugeMetricFamily(
        "bp_audit_chain_verified_events", "Events covered by the last verification.", value=last.events if last else 0
    )
