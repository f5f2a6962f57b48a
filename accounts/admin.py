from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import HttpRequest

from accounts.models import User, UserSession


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "phone")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserCreationForm
    form = UserEditForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_active", "email_verified", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "email_verified", "groups")
    search_fields = ("email", "full_name")
    readonly_fields = ("public_id", "date_joined", "last_login", "password_changed_at")
    fieldsets = (
        (None, {"fields": ("public_id", "email", "password")}),
        ("Personal details", {"fields": ("full_name", "phone", "phone_verified", "email_verified")}),
        (
            "Status",
            {"fields": ("is_active", "must_reset_password", "date_joined", "last_login", "password_changed_at")},
        ),
        ("Roles", {"fields": ("is_staff", "is_superuser", "groups")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "phone", "password1", "password2")}),
    )

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        from audit.events import EventType
        from audit.services import record

        super().save_model(request, obj, form, change)
        if not change:
            from django.contrib.auth.models import Group

            group = Group.objects.filter(name="customer").first()
            if group is not None:
                obj.groups.add(group)
            record(type=EventType.ACCOUNT_CREATED_BY_STAFF, user=obj, actor=request.user)


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin[UserSession]):
    list_display = (
        "user",
        "kind",
        "device_name",
        "ip",
        "country",
        "created_at",
        "last_seen_at",
        "ended_at",
        "end_reason",
    )
    list_filter = ("kind", "end_reason")
    search_fields = ("user__email", "ip")
    exclude = ("session_key_hash",)
    list_select_related = ("user",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "session_key_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
