from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """An email or SMS waiting to go out, or the record that it went.

    Written in the same transaction as the action that causes it, so no message is lost
    when the broker or the provider is down; bodies are encrypted at rest (they can hold
    one-time codes) and wiped once sent.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        # An HTTP POST to a URL (e.g. an OpenID Connect back-channel logout token to a client).
        WEBHOOK = "webhook", "HTTP webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=64, help_text="What the message is for, e.g. email_verification")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=255, blank=True)
    body_encrypted = models.TextField(blank=True)
    html_encrypted = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    provider_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.purpose} to {self.masked_recipient} ({self.status})"

    @property
    def masked_recipient(self) -> str:
        if self.channel == self.Channel.WEBHOOK:
            return self.recipient.split("?", 1)[0]
        if self.channel == self.Channel.SMS:
            return f"{self.recipient[:3]}•••••{self.recipient[-3:]}"
        local, _, domain = self.recipient.partition("@")
        return f"{local[:1]}•••@{domain}"
