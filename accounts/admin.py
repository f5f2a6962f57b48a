"""Admin for users and their sessions.

- Staff actions on users (unlock, end sessions, disable/enable, force a password reset from
  accounts.staff; reset MFA registered by mfa/admin.py) go through their own page: the staff
  member re-authenticates on the standard page (accounts.authn: a fresh proof, a new session
  key) if they have not within REAUTH_MAX_AGE_SECONDS, then writes a reason; each action is
  audited with the staff member as actor.
- `is_active` and `must_reset_password` are read-only in the form: they change only through
  those audited actions.
- Without audit.view_personal_data (the support role) names, emails and phone numbers are masked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from accounts.authn import reauth_required
from accounts.models import User, UserSession
from accounts.staff import StaffAction, StaffActionError, action_named, available_actions
from audit.roles import MANAGE_USER_ACCOUNTS, VIEW_PERSONAL_DATA
from core.admin import ReadOnlyAdminMixin

# At most this many accounts per staff action (the page lists each of them).
STAFF_ACTION_MAX_USERS = 200


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "phone")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class StaffActionForm(forms.Form):
    reason = forms.CharField(
        label="Reason (recorded in the audit log)",
        min_length=5,
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


def can_see_personal_data(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(VIEW_PERSONAL_DATA))


def mask_ip(ip: str | None) -> str:
    """203.0.113.7 -> 203.0.113.x; 2001:db8:1:2::7 -> 2001:db8:1:x."""
    if not ip:
        return ""
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + ":x"
    return ".".join(ip.split(".")[:3]) + ".x"


def _mask_name(name: str) -> str:
    return " ".join(f"{part[:1]}•••" for part in name.split()) if name else ""


class _MaskedObject:
    """Stands in for the user in the admin's page title and breadcrumbs (which print str(obj))."""

    def __init__(self, obj: User) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)

    def __str__(self) -> str:
        return self._obj.masked_email


def _staff_action(action: StaffAction) -> Any:
    def run(modeladmin: UserAdmin, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        return modeladmin.staff_action_start(request, queryset, action)

    run.__name__ = f"staff_{action.name}"
    return admin.action(description=action.label, permissions=["manage_user_accounts"])(run)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserCreationForm
    form = UserEditForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_active", "email_verified", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "email_verified", "groups")
    search_fields = ("email", "full_name")
    readonly_fields = (
        "public_id",
        "date_joined",
        "last_login",
        "password_changed_at",
        "is_active",
        "must_reset_password",
    )
    fieldsets = (
        (None, {"fields": ("public_id", "email", "password")}),
        ("Personal details", {"fields": ("full_name", "phone", "phone_verified", "email_verified")}),
        (
            "Status (changed through the staff actions, which are audited)",
            {"fields": ("is_active", "must_reset_password", "date_joined", "last_login", "password_changed_at")},
        ),
        ("Roles", {"fields": ("is_staff", "is_superuser", "groups")}),
    )
    masked_fieldsets = (
        (None, {"fields": ("public_id", "masked_email", "masked_name", "masked_phone")}),
        (
            "Status",
            {"fields": ("is_active", "email_verified", "must_reset_password", "date_joined", "last_login")},
        ),
        ("Roles", {"fields": ("is_staff", "groups")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "phone", "password1", "password2")}),
    )

    # --- Masking for roles without audit.view_personal_data -------------------------------

    @admin.display(description="email")
    def masked_email(self, obj: User) -> str:
        return obj.masked_email

    @admin.display(description="name")
    def masked_name(self, obj: User) -> str:
        return _mask_name(obj.full_name)

    @admin.display(description="phone")
    def masked_phone(self, obj: User) -> str:
        return obj.masked_phone

    def get_list_display(self, request: HttpRequest) -> Any:
        if can_see_personal_data(request):
            return super().get_list_display(request)
        return ("masked_email", "masked_name", "is_active", "email_verified", "is_staff", "date_joined")

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> Any:
        return (list_display[0],)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not can_see_personal_data(request):
            return self.masked_fieldsets
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return [f for f in fields if f not in ("is_active", "must_reset_password")]
        if not can_see_personal_data(request):
            fields += ["masked_email", "masked_name", "masked_phone", "email_verified", "is_staff", "groups"]
        return fields

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if context.get("original") is not None and not can_see_personal_data(request):
            context["original"] = _MaskedObject(context["original"])
            context["subtitle"] = str(context["original"])
        return super().render_change_form(request, context, *args, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Changing a user shows their personal data in the form.
        return bool(super().has_change_permission(request, obj)) and can_see_personal_data(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Accounts are disabled, never deleted: their audit trail refers to them.
        return False

    # --- Staff actions ----------------------------------------------------------------------

    def has_manage_user_accounts_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_staff and request.user.has_perm(MANAGE_USER_ACCOUNTS))

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # accounts are disabled, never deleted
        for action in available_actions():
            function = _staff_action(action)
            if self.has_manage_user_accounts_permission(request):
                actions[function.__name__] = (function, function.__name__, action.label)
        return actions

    def get_urls(self) -> list[Any]:
        staff_action: URLPattern = path(
            "staff-action/<str:name>/",
            self.admin_site.admin_view(self.staff_action_entry),
            name="accounts_user_staff_action",
        )
        return [staff_action, *super().get_urls()]

    def staff_action_start(self, request: HttpRequest, queryset: QuerySet[User], action: StaffAction) -> Any:
        """The changelist's action: on to the action's own page, with the selection."""
        if not self.has_manage_user_accounts_permission(request):
            self.message_user(request, "You are not allowed to do that.", messages.ERROR)
            return None
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)[: STAFF_ACTION_MAX_USERS + 1]]
        if len(ids) > STAFF_ACTION_MAX_USERS:
            self.message_user(request, f"Select at most {STAFF_ACTION_MAX_USERS} accounts.", messages.ERROR)
            return None
        return HttpResponseRedirect(self._staff_action_path(action, ids))

    def _staff_action_path(self, action: StaffAction, ids: list[str]) -> str:
        page = reverse(f"{self.admin_site.name}:accounts_user_staff_action", kwargs={"name": action.name})
        return f"{page}?{urlencode({'ids': ','.join(ids)})}"

    def staff_action_entry(self, request: HttpRequest, name: str) -> HttpResponse:
        """Who may, then the one re-authentication (accounts.authn: the standard page and back here; a
        reason submitted once the window had closed is held and replayed), then the action's page."""
        action = action_named(name)
        if action is None:
            raise Http404
        if not self.has_manage_user_accounts_permission(request):
            raise PermissionDenied
        return reauth_required(self.staff_action_view)(request, action)

    def staff_action_view(self, request: HttpRequest, action: StaffAction) -> HttpResponse:
        """A reason, then the action on each selected account."""
        raw_ids = (request.POST.get("ids") or request.GET.get("ids", "")).split(",")
        ids = [value for value in raw_ids if value.isascii() and value.isdigit() and len(value) <= 18]
        if not ids or len(ids) != len(raw_ids) or len(ids) > STAFF_ACTION_MAX_USERS:
            self.message_user(request, "Select the accounts again.", messages.ERROR)
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:accounts_user_changelist"))
        users = list(User.objects.filter(pk__in=ids).order_by("email"))
        form = StaffActionForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            self._perform(request, users, action, form.cleaned_data["reason"])
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:accounts_user_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": action.label,
            "opts": self.model._meta,
            "action": action,
            "users": users,
            "ids": ",".join(ids),
            "masked": not can_see_personal_data(request),
            "form": form,
        }
        return TemplateResponse(request, "admin/accounts/user/staff_action.html", context)

    def _perform(self, request: HttpRequest, users: list[User], action: StaffAction, reason: str) -> None:
        done = 0
        for user in users:
            try:
                action.function(user=user, actor=request.user, reason=reason)
            except StaffActionError as exc:
                self.message_user(request, f"{user.masked_email}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{action.label}: done for {done} account(s).", messages.SUCCESS)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Staff never choose a customer's password: "Force a password reset" is the audited way."""
        raise PermissionDenied

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

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Every change of a user's details or roles by staff is audited (field names, group changes)."""
        from audit.events import EventType
        from audit.services import record

        obj = form.instance
        before = set(obj.groups.values_list("name", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        if not change:
            return
        after = set(obj.groups.values_list("name", flat=True))
        fields = sorted(name for name in form.changed_data if name != "groups")
        if fields or before != after:
            record(
                type=EventType.ADMIN_USER_CHANGED,
                user=obj,
                actor=request.user,
                details={
                    "fields": fields,
                    "groups_added": sorted(after - before),
                    "groups_removed": sorted(before - after),
                },
            )


class MaskPersonalDataMixin:
    """For roles without audit.view_personal_data (support): the user shows as a masked email, IP
    addresses lose their last part and precise places are hidden, in lists and in detail pages."""

    mask_user_fields: tuple[str, ...] = ("user",)
    mask_ip_fields: tuple[str, ...] = ()
    hide_fields: tuple[str, ...] = ()
    model: Any

    def _masking_display(self, name: str) -> Any:
        if name in self.mask_user_fields:

            def show_user(obj: Any) -> str:
                related = getattr(obj, name)
                return str(related.masked_email) if related is not None else ""

            return admin.display(description=name)(show_user)

        def show_ip(obj: Any) -> str:
            return mask_ip(getattr(obj, name))

        return admin.display(description=name)(show_ip)

    def _masked(self, names: Any) -> list[Any]:
        masked = set(self.mask_user_fields) | set(self.mask_ip_fields)
        return [
            self._masking_display(name) if name in masked else name for name in names if name not in self.hide_fields
        ]

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = super().get_list_display(request)  # type: ignore[misc]
        return shown if can_see_personal_data(request) else self._masked(shown)

    def get_search_fields(self, request: HttpRequest) -> Any:
        fields = super().get_search_fields(request)  # type: ignore[misc]
        if can_see_personal_data(request):
            return fields
        hidden = set(self.mask_ip_fields) | set(self.hide_fields)
        return tuple(f for f in fields if f.split("__")[0] not in hidden)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))  # type: ignore[misc]
        return fields if can_see_personal_data(request) else self._masked(fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if can_see_personal_data(request):
            return super().get_readonly_fields(request, obj)  # type: ignore[misc]
        return self.get_fields(request, obj)


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdminMixin, MaskPersonalDataMixin, admin.ModelAdmin[UserSession]):
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
    list_select_related = ("user",)
    mask_ip_fields = ("ip",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = [f.name for f in self.model._meta.fields if f.name != "session_key_hash"]
        return fields if can_see_personal_data(request) else self._masked(fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)


def _unregister_django_otp_device_admins() -> None:
    """Second factors live in mfa.* (with their own admin). django_otp's device admins would show
    a user's TOTP seed as a QR code (config view) and answer a missing id with a 500: off."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for model in (TOTPDevice, StaticDevice):
        if admin.site.is_registered(model):
            admin.site.unregister(model)


_unregister_django_otp_device_admins()
