from __future__ import annotations

from django.contrib import admin

from accounts.admin import MaskPersonalDataMixin
from risk.models import KnownDevice, LoginAlert, RiskProfile


@admin.register(KnownDevice)
class KnownDeviceAdmin(MaskPersonalDataMixin, admin.ModelAdmin[KnownDevice]):
    mask_ip_fields = ("last_ip",)
    hide_fields = ("last_place", "device_id_hash")
    list_display = ("name", "user", "kind", "last_country", "last_ip", "last_seen_at", "trusted_until")
    list_filter = ("kind", "last_country")
    search_fields = ("user__email", "name", "last_ip")
    readonly_fields = (
        "id",
        "user",
        "device_id_hash",
        "kind",
        "ua_family",
        "first_seen_at",
        "last_seen_at",
        "last_ip",
        "last_country",
        "last_place",
        "alerted_at",
    )
    fields = (
        "id",
        "user",
        "name",
        "kind",
        "ua_family",
        "first_seen_at",
        "last_seen_at",
        "last_ip",
        "last_country",
        "last_place",
        "trusted_until",
        "alerted_at",
        "device_id_hash",
    )
    date_hierarchy = "last_seen_at"

    def has_add_permission(self, request: object) -> bool:  # type: ignore[override]
        return False


@admin.register(RiskProfile)
class RiskProfileAdmin(MaskPersonalDataMixin, admin.ModelAdmin[RiskProfile]):
    mask_ip_fields = ("last_login_ip",)
    hide_fields = ("last_login_latitude", "last_login_longitude")
    list_display = ("user", "last_login_country", "last_login_at")
    search_fields = ("user__email",)
    readonly_fields = (
        "user",
        "seen_countries",
        "last_login_at",
        "last_login_ip",
        "last_login_country",
        "last_login_latitude",
        "last_login_longitude",
    )


@admin.register(LoginAlert)
class LoginAlertAdmin(MaskPersonalDataMixin, admin.ModelAdmin[LoginAlert]):
    mask_ip_fields = ("ip",)
    hide_fields = ("place",)
    list_display = ("user", "device_name", "place", "created_at", "reported_at")
    search_fields = ("user__email",)
    readonly_fields = ("id", "user", "device", "reasons", "device_name", "place", "ip", "created_at", "reported_at")
