from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from audit.events import EventType, Outcome


class AppendOnlyError(Exception):
    """Audit rows are never changed or removed once written."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only")


class AuditEvent(models.Model):
    """One security-relevant fact. Append-only: the model and a database trigger refuse change."""

    id = models.BigAutoField(primary_key=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    # No `choices`: every area adds types to audit/events.py, and that must not need an audit migration.
    type = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        help_text="The user the event is about.",
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    ua_family = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=8, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        permissions = [
            ("view_reports", "Can view security reports and export audit events"),
            ("manage_user_accounts", "Can perform audited staff actions on user accounts"),
            ("view_personal_data", "Can see customers' personal data in the admin"),
        ]
        indexes = [
            models.Index(fields=["user", "-occurred_at"]),
            models.Index(fields=["type", "-occurred_at"]),
            models.Index(fields=["ip", "-occurred_at"]),
            # The reports' fraud rate (audit.selectors.fraud_rate_from_log) sums 90 days of completed
            # payments: an index-only scan of these rows' details instead of reading every row of
            # the window; and finds the completed payment a fraud report names by its id.
            models.Index(
                fields=["occurred_at"],
                include=["details"],
                condition=models.Q(type="payment.completed"),
                name="audit_payment_completed_idx",
            ),
            models.Index(
                KeyTextTransform("payment", "details"),
                condition=models.Q(type="payment.completed"),
                name="audit_payment_completed_id_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.type} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are append-only")

    @property
    def label(self) -> str:
        try:
            return EventType(self.type).label
        except ValueError:
            return self.type


class AuditCheckpoint(models.Model):
    """One link of the hash chain: seals the audit events with ids in (previous last_event_id, last_event_id].

    hash = sha256(prev_hash + canonical(event_1) + ... + canonical(event_n)), events in id order.
    `entries` keeps [id, sha256(canonical(event))] for each sealed event, so verification can name
    the first altered, inserted or missing event rather than only the broken checkpoint.
    Append-only, like the events (model and database trigger).
    """

    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    first_event_id = models.BigIntegerField(null=True, blank=True)
    last_event_id = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    entries = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} (events {self.first_event_id}..{self.last_event_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit checkpoints are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit checkpoints are append-only")


class ChainVerification(models.Model):
    """The result of one run of the chain verification (beat task or `manage.py audit_verify`)."""

    ran_at = models.DateTimeField(default=timezone.now, db_index=True)
    ok = models.BooleanField()
    checkpoints = models.PositiveIntegerField(default=0)
    events = models.PositiveBigIntegerField(default=0)
    last_checkpoint_seq = models.PositiveBigIntegerField(null=True, blank=True)
    last_event_id = models.BigIntegerField(null=True, blank=True)
    # The hash of the last verified checkpoint: the next incremental run starts from that
    # checkpoint only if it still has this hash.
    last_checkpoint_hash = models.CharField(max_length=64, blank=True)
    full = models.BooleanField(default=True, help_text="Whole chain (True) or from the last verified checkpoint.")
    started_at_seq = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Incremental runs: the verified checkpoint the run started after."
    )
    events_read = models.PositiveBigIntegerField(default=0)
    problem = models.CharField(max_length=32, blank=True)
    event_id = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-ran_at", "-id"]

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'FAILED'} at {self.ran_at:%Y-%m-%d %H:%M:%S}"
