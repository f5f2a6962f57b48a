from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditCheckpoint, AuditEvent, ChainVerification
from core.admin import ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[AuditEvent]):
    list_display = ("occurred_at", "type", "outcome", "user", "actor", "ip", "country", "reason")
    list_filter = ("type", "outcome", "country")
    search_fields = ("user__email", "actor__email", "ip", "request_id", "reason")
    date_hierarchy = "occurred_at"
    list_select_related = ("user", "actor")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


class _ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Any]):
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(_ReadOnlyAdmin):
    list_display = ("seq", "created_at", "first_event_id", "last_event_id", "event_count", "hash")
    exclude = ("entries",)
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "entries"]


@admin.register(ChainVerification)
class ChainVerificationAdmin(_ReadOnlyAdmin):
    list_display = ("ran_at", "ok", "checkpoints", "events", "last_checkpoint_seq", "problem", "event_id")
    list_filter = ("ok", "problem")
    date_hierarchy = "ran_at"
