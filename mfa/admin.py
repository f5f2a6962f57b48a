from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.staff import StaffAction, register_action
from mfa.models import CodeChallenge, MFAState
from mfa.staff import account_mfa_reset

register_action(
    StaffAction(
        "reset_mfa",
        "Reset second factors (MFA)",
        account_mfa_reset,
        "Every second factor of these users is removed; they must enrol again.",
    )
)


@admin.register(MFAState)
class MFAStateAdmin(admin.ModelAdmin[MFAState]):
    """Per-user MFA state, read-only. Resetting a user's factors is the audited staff action on the user
    (Users → action, registered above), which re-authenticates the staff member and asks for a reason."""

    list_display = ("user", "preferred_method", "consecutive_failures", "locked_until")
    search_fields = ("user__email",)
    readonly_fields = ("user", "preferred_method", "consecutive_failures", "locked_until", "enrol_prompt_dismissed_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


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
