from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from accounts.models import User
from audit.models import AuditEvent
from risk.geo import country_name
from risk.models import KnownDevice, RiskProfile


def devices_for_user(*, user: User) -> QuerySet[KnownDevice]:
    return KnownDevice.objects.filter(user=user).order_by("-last_seen_at")


def profile_for_user(*, user: User) -> RiskProfile | None:
    return RiskProfile.objects.filter(user=user).first()


# What an event means, said to the user. {where} and {device} are filled from the row.
_PLAIN: dict[str, str] = {
    "auth.login_succeeded": "You signed in{device}{where}.",
    "auth.login_failed": "Someone tried to sign in to your account with a wrong password{where}.",
    "auth.lockout": "Sign-in was paused after too many wrong passwords{where}.",
    "auth.logout": "You signed out{device}.",
    "auth.session_ended": "A session was ended.",
    "auth.password_changed": "Your password was changed.",
    "auth.password_reset_requested": "A password reset link was sent to you.",
    "auth.password_reset_completed": "Your password was reset.",
    "account.signup": "Your account was created.",
    "account.email_verified": "Your email address was confirmed.",
    "risk.new_device": "A sign-in came from a device we had not seen before{device}{where}.",
    "risk.new_country": "A sign-in came from a country we had not seen before{where}.",
    "risk.impossible_travel": "A sign-in came from too far away to have travelled there since your last one{where}.",
    "risk.ip_failing_many_accounts": "A sign-in came from a network that is trying many accounts{where}.",
    "risk.geo_blocked": "A sign-in came from a country not allowed for your account{where}.",
    "risk.login_denied": "We refused a sign-in to protect your account{where}.",
    "risk.alert_sent": "We sent you a new sign-in alert.",
    "risk.not_me": "You reported a sign-in that was not you; we signed you out everywhere.",
    "risk.device_renamed": "You renamed a device.",
    "risk.device_forgotten": "You forgot a device.",
    "risk.device_trusted": "You chose to remember a device{device}.",
    "risk.device_trust_ended": "Remembered devices were forgotten.",
    "risk.allowed_countries_changed": "You changed the countries you can sign in from.",
    "privacy.data_exported": "You downloaded your personal data.",
}


@dataclass(frozen=True)
class ActivityLine:
    when: datetime
    text: str
    outcome: str
    ip: str


def _describe(event: AuditEvent) -> str:
    template = _PLAIN.get(event.type)
    if template is None:
        return f"{event.label}."
    details = event.details if isinstance(event.details, dict) else {}
    device = str(details.get("device_name") or event.ua_family or "")
    where = ""
    if details.get("place"):
        where = f" from {details['place']}"
    elif event.country:
        where = f" from {country_name(event.country)}"
    return template.format(device=f" on {device}" if device else "", where=where)


def activity_in_plain_words(*, user: User, limit: int = 20) -> list[ActivityLine]:
    events = AuditEvent.objects.filter(user=user).order_by("-occurred_at", "-id")[:limit]
    return [ActivityLine(when=e.occurred_at, text=_describe(e), outcome=e.outcome, ip=e.ip or "") for e in events]
