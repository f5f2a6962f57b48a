from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from mfa import services
from mfa.models import CodeChallenge, MFAState


@admin.register(MFAState)
class MFAStateAdmin(admin.ModelAdmin[MFAState]):
    """Per-user MFA state; the action resets a user's factors (lost phone), audited."""

    list_display = ("user", "preferred_method", "consecutive_failures", "locked_until")
    search_fields = ("user__email",)
    readonly_fields = ("user", "preferred_method", "consecutive_failures", "locked_until", "enrol_prompt_dismissed_at")
    actions = ["reset_factors"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Remove every second factor of the selected users (identity checked by phone)")
    def reset_factors(self, request: HttpRequest, queryset: QuerySet[MFAState]) -> None:
        for state in queryset.select_related("user"):
            services.mfa_reset(user=state.user, actor=request.user, reason="reset from the admin")
        messages.success(request, f"Second factors reset for {queryset.count()} user(s).")


@admin.register(CodeChallenge)
class CodeChallengeAdmin(admin.ModelAdmin[CodeChallenge]):
    list_display = (
        "user",
        "method",
        "purpose",
        "sent_to",
        "created_at",
        "expires_at",
        "used_at",
        "voided_at",
        "attempts",
    )
    list_filter = ("method", "purpose")
    search_fields = ("user__email",)
    exclude = ("code_hash", "binding")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
