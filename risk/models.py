from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class KnownDevice(models.Model):
    """A browser or app a user has signed in from, known by a long-lived random id (stored hashed)."""

    class Kind(models.TextChoices):
        WEB = "web", "Web browser"
        MOBILE = "mobile", "Mobile app"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_devices")
    device_id_hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.WEB)
    name = models.CharField(max_length=120, help_text="A human name, e.g. Firefox on Windows; the user may rename it.")
    ua_family = models.CharField(max_length=64, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    last_country = models.CharField(max_length=8, blank=True)
    last_place = models.CharField(max_length=120, blank=True)
    trusted_until = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "device_id_hash"], name="risk_device_unique_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.user_id}"

    @property
    def is_trusted(self) -> bool:
        return self.trusted_until is not None and self.trusted_until > timezone.now()


class RiskProfile(models.Model):
    """Per-user risk facts: where the last successful login came from, countries seen, geo-fence."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="risk_profile"
    )
    allowed_countries = models.JSONField(
        default=list, blank=True, help_text="ISO codes the user accepts logins from; empty means anywhere."
    )
    seen_countries = models.JSONField(default=list, blank=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    last_login_ip = models.GenericIPAddressField(null=True, blank=True)
    last_login_country = models.CharField(max_length=8, blank=True)
    last_login_latitude = models.FloatField(null=True, blank=True)
    last_login_longitude = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"risk profile of {self.user_id}"


class LoginAlert(models.Model):
    """A new-device / new-country alert; its id is in the signed "this wasn't me" link."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_alerts")
    device = models.ForeignKey(KnownDevice, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    reasons = models.JSONField(default=list)
    device_name = models.CharField(max_length=120, blank=True)
    place = models.CharField(max_length=120, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"alert {self.id} for {self.user_id}"
