"""Personal data export: everything the portal holds about the user, as one JSON document."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.apps import apps
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import security
from accounts.models import User, UserSession
from audit.events import EventType
from audit.models import AuditEvent
from audit.services import record
from risk.models import KnownDevice, LoginAlert, RiskProfile
from risk.services import ExportRateLimited

# Columns that hold secrets or internals, never exported even when a model has them.
_NEVER = {"password", "session_key_hash", "device_id_hash", "binding_digest", "step_up_challenge_id", "request_hash"}


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def _row(obj: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in obj._meta.concrete_fields:
        if f.name in _NEVER or (fields is not None and f.name not in fields):
            continue
        if isinstance(f, models.ForeignKey):
            related = getattr(obj, f.attname)
            out[f.name] = _value(related)
            continue
        out[f.name] = _value(getattr(obj, f.attname))
    return out


def _payments(user: User) -> list[dict[str, Any]]:
    try:
        payment_model = apps.get_model("payments", "Payment")
    except LookupError:
        return []
    rows = payment_model.objects.filter(owner=user).order_by("-created_at")
    return [_row(p) for p in rows]


def _bank_accounts(user: User) -> list[dict[str, Any]]:
    from payments.selectors import accounts_for_user

    return [
        _row(a, ["id", "iban", "name", "currency", "balance", "created_at", "is_active"])
        for a in accounts_for_user(user=user)
    ]


def personal_data_export(*, request: HttpRequest, user: User) -> dict[str, Any]:
    """Builds the export. Needs a recent re-authentication and is rate limited; audited."""
    from accounts.authn import require_recent_auth

    require_recent_auth(request=request)
    if security.rate_limited(request, name="data_export_ip"):
        raise ExportRateLimited("You have downloaded your data several times recently. Please try again later.")
    profile = RiskProfile.objects.filter(user=user).first()
    with transaction.atomic():
        document: dict[str, Any] = {
            "format": "bank-portal personal data export, version 1",
            "generated_at": timezone.now().isoformat(),
            "profile": _row(
                user,
                [
                    "public_id",
                    "email",
                    "full_name",
                    "phone",
                    "phone_verified",
                    "email_verified",
                    "date_joined",
                    "last_login",
                    "password_changed_at",
                ],
            ),
            "sign_in_settings": {
                "allowed_countries": profile.allowed_countries if profile else [],
                "countries_seen": profile.seen_countries if profile else [],
                "last_login_at": _value(profile.last_login_at) if profile else None,
                "last_login_country": profile.last_login_country if profile else "",
            },
            "devices": [_row(d, None) for d in KnownDevice.objects.filter(user=user).order_by("-last_seen_at")],
            "sessions": [_row(s, None) for s in UserSession.objects.filter(user=user).order_by("-created_at")[:500]],
            "sign_in_alerts": [_row(a, None) for a in LoginAlert.objects.filter(user=user)[:500]],
            "bank_accounts": _bank_accounts(user),
            "payments": _payments(user),
            "security_events": [
                _row(
                    e,
                    ["public_id", "occurred_at", "type", "outcome", "ip", "ua_family", "country", "reason", "details"],
                )
                for e in AuditEvent.objects.filter(user=user).order_by("-occurred_at", "-id")[:5000]
            ],
        }
        for device in document["devices"]:
            device.pop("user", None)
        for session in document["sessions"]:
            session.pop("user", None)
        record(
            type=EventType.PRIVACY_DATA_EXPORTED,
            user=user,
            details={
                "devices": len(document["devices"]),
                "sessions": len(document["sessions"]),
                "payments": len(document["payments"]),
                "events": len(document["security_events"]),
            },
        )
    return document
