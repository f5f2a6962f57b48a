from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdminMixin
from notifications.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[OutboxMessage]):
    list_display = ("created_at", "channel", "purpose", "masked_recipient", "status", "attempts", "last_error")
    list_filter = ("channel", "status", "purpose")
    exclude = ("body_encrypted", "html_encrypted", "recipient")
    readonly_fields = (
        "channel",
        "purpose",
        "user",
        "masked_recipient",
        "subject",
        "status",
        "attempts",
        "last_error",
        "provider_id",
        "created_at",
        "next_attempt_at",
        "sent_at",
    )
