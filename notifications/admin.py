from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from notifications.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin[OutboxMessage]):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
