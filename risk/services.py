"""Risk-based sign-in: device recognition, geolocation signals, the policy, alerts, remembered devices.

One service for web and API: both front ends call `evaluate_login` after the password and
`login_succeeded` once the login is complete.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts import security
from accounts.models import User
from audit.events import EventType, Outcome
from audit.services import record
from core import context
from core.crypto import constant_time_equals, keyed_hash
from core.errors import DomainError
from core.net import client_ip, device_name
from notifications.services import email_enqueue, sms_enqueue
from risk.devices import device_id_hash, valid_device_id, web_device_id
from risk.geo import Place, distance_km, locate
from risk.models import KnownDevice, LoginAlert, RiskProfile

logger = logging.getLogger(__name__)

Action = Literal["allow", "mfa", "deny"]
Channel = Literal["web", "api"]
ACTIONS: tuple[Action, ...] = ("allow", "mfa", "deny")
SIGNALS = ("new_device", "new_country", "impossible_travel", "ip_failing_many_accounts", "geo_blocked")
SIGNAL_EVENTS = {
    "new_device": EventType.RISK_NEW_DEVICE,
    "new_country": EventType.RISK_NEW_COUNTRY,
    "impossible_travel": EventType.RISK_IMPOSSIBLE_TRAVEL,
    "ip_failing_many_accounts": EventType.RISK_IP_FAILING_MANY_ACCOUNTS,
    "geo_blocked": EventType.RISK_GEO_BLOCKED,
}
# Alerts go out for these; the others change what the login needs, not who is told.
ALERT_SIGNALS = ("new_device", "new_country")
NOT_ME_SALT = "risk.not-me"
SESSION_KEY = "risk_decision"

DENY_MESSAGES = {
    "password_reset_required": (
        "For your security, you need to set a new password before you can sign in. "
        "Use “Forgot your password?” to get a link."
    ),
    "geo_blocked": "Sign-in from your current location is not allowed for this account.",
}
DEFAULT_DENY_MESSAGE = (
    "For your security, we could not sign you in from here. If this keeps happening, please contact the bank."
)


class RiskError(DomainError):
    """A refusal from a risk service, with a message safe to show the user."""


class ExportRateLimited(RiskError):
    pass


@dataclass
class RiskDecision:
    action: Action
    reasons: list[str]
    device: KnownDevice | None
    country: str
    channel: Channel = "web"
    place: Place | None = None
    device_id_hash: str = ""
    device_name: str = ""
    trusted_device: bool = False
    first_login: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def denied(self) -> bool:
        return self.action == "deny"

    @property
    def requires_second_factor(self) -> bool:
        return self.action == "mfa"

    @property
    def skips_second_factor(self) -> bool:
        """A remembered device with nothing suspicious about this login."""
        return self.trusted_device and self.action == "allow" and not self.reasons

    @property
    def message(self) -> str:
        """What the login page says when the login is refused."""
        for reason in self.reasons:
            if reason in DENY_MESSAGES:
                return DENY_MESSAGES[reason]
        return DEFAULT_DENY_MESSAGE

    def audit_details(self) -> dict[str, Any]:
        """For the login's own audit event (session_start(extra=...))."""
        return {"risk_action": self.action, "risk_reasons": list(self.reasons), "device_name": self.device_name}

    def as_dict(self) -> dict[str, Any]:
        place = self.place or Place(ip="")
        return {
            "action": self.action,
            "reasons": list(self.reasons),
            "device_pk": str(self.device.pk) if self.device else "",
            "country": self.country,
            "channel": self.channel,
            "device_id_hash": self.device_id_hash,
            "device_name": self.device_name,
            "trusted_device": self.trusted_device,
            "first_login": self.first_login,
            "details": self.details,
            "place": {
                "ip": place.ip,
                "country": place.country,
                "country_name": place.country_name,
                "city": place.city,
                "latitude": place.latitude,
                "longitude": place.longitude,
                "is_local": place.is_local,
                "source": place.source,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, user: User) -> RiskDecision:
        device = None
        if data.get("device_pk"):
            device = KnownDevice.objects.filter(pk=data["device_pk"], user=user).first()
        return cls(
            action=data.get("action", "allow"),
            reasons=list(data.get("reasons", [])),
            device=device,
            country=data.get("country", ""),
            channel=data.get("channel", "web"),
            place=Place(**data["place"]) if data.get("place") else None,
            device_id_hash=data.get("device_id_hash", ""),
            device_name=data.get("device_name", ""),
            trusted_device=bool(data.get("trusted_device")),
            first_login=bool(data.get("first_login")),
            details=dict(data.get("details", {})),
        )


def _stricter(a: Action, b: Action) -> Action:
    return a if ACTIONS.index(a) >= ACTIONS.index(b) else b


def _policy_action(signal: str) -> Action:
    value = str(settings.RISK_POLICY.get(signal, "mfa"))
    return value if value in ACTIONS else "mfa"  # type: ignore[return-value]


def _previous_coordinates(profile: RiskProfile) -> tuple[float, float] | None:
    if profile.last_login_latitude is not None and profile.last_login_longitude is not None:
        return (profile.last_login_latitude, profile.last_login_longitude)
    return Place(ip="", country=profile.last_login_country).coordinates


def _travel(profile: RiskProfile | None, place: Place) -> dict[str, Any] | None:
    """Speed from the last successful login's place to here, when it is impossible."""
    if profile is None or profile.last_login_at is None or place.is_local or not place.country:
        return None
    before = _previous_coordinates(profile)
    now_at = place.coordinates
    if before is None or now_at is None:
        return None
    km = distance_km(before, now_at)
    if km < settings.RISK_IMPOSSIBLE_TRAVEL_MIN_KM:
        return None
    hours = max((timezone.now() - profile.last_login_at).total_seconds() / 3600, 1 / 60)
    speed = km / hours
    if speed <= settings.RISK_IMPOSSIBLE_TRAVEL_KMH:
        return None
    return {
        "distance_km": round(km),
        "speed_kmh": round(speed),
        "from_country": profile.last_login_country,
        "hours": round(hours, 2),
    }


def _geo_blocked(profile: RiskProfile | None, place: Place) -> str:
    if place.is_local:
        return ""
    blocked = {c.upper() for c in settings.RISK_BLOCKED_COUNTRIES}
    if place.country and place.country in blocked:
        return "bank_blocked_list"
    allowed = {str(c).upper() for c in (profile.allowed_countries if profile else [])}
    if allowed and place.country not in allowed:
        return "outside_allowed_countries"
    return ""


def _device_hash_for(request: HttpRequest, channel: Channel, device_id: str | None) -> str:
    if channel == "web" and device_id is None:
        return device_id_hash(web_device_id(request))
    raw = valid_device_id(device_id)
    return device_id_hash(raw) if raw else ""


def evaluate_login(
    *,
    request: HttpRequest,
    user: User,
    channel: Channel = "web",
    device_id: str | None = None,
    device_name_hint: str = "",
) -> RiskDecision:
    """Scores a login whose password was right. Records one audit event per signal fired.

    Web: `device_id` None means "this browser's device cookie" (a new one is issued when absent).
    API: the app's `device_id`; without one the device counts as new but cannot be remembered.
    """
    cached = getattr(request, "_risk_decision", None)
    if isinstance(cached, RiskDecision) and getattr(request, "_risk_decision_user", None) == user.pk:
        return cached

    ip = client_ip(request)
    place = locate(ip)
    context.update(country=place.country)
    hashed = _device_hash_for(request, channel, device_id)
    device = KnownDevice.objects.filter(user=user, device_id_hash=hashed).first() if hashed else None
    profile = RiskProfile.objects.filter(user=user).first()
    has_history = device is not None or (profile is not None and profile.last_login_at is not None)
    has_history = has_history or KnownDevice.objects.filter(user=user).exists()
    ua = request.META.get("HTTP_USER_AGENT", "")
    name = device.name if device else (device_name_hint.strip()[:120] or device_name(ua) or "Unknown device")

    reasons: list[str] = []
    details: dict[str, Any] = {"channel": channel, "place": place.label}
    if device is None and has_history:
        reasons.append("new_device")
    if place.country and profile is not None and profile.seen_countries and place.country not in profile.seen_countries:
        reasons.append("new_country")
    travel = _travel(profile, place)
    if travel:
        reasons.append("impossible_travel")
        details["travel"] = travel
    failing = security.accounts_failing_from_ip(ip)
    if failing >= settings.RISK_IP_FAILING_ACCOUNTS:
        reasons.append("ip_failing_many_accounts")
        details["failing_accounts"] = failing
    fence = _geo_blocked(profile, place)
    if fence:
        reasons.append("geo_blocked")
        details["geo_fence"] = fence

    action: Action = "allow"
    if settings.RISK_ENABLED:
        for signal in reasons:
            action = _stricter(action, _policy_action(signal))
        if len(reasons) >= 2:
            multiple = settings.RISK_MULTIPLE_SIGNALS_ACTION
            action = _stricter(action, multiple if multiple in ACTIONS else "mfa")
    if user.must_reset_password:
        reasons.append("password_reset_required")
        action = "deny"

    decision = RiskDecision(
        action=action,
        reasons=reasons,
        device=device,
        country=place.country,
        channel=channel,
        place=place,
        device_id_hash=hashed,
        device_name=name,
        trusted_device=bool(device and device.is_trusted),
        first_login=not has_history,
        details=details,
    )
    common = {"channel": channel, "device_name": name, "place": place.label, "risk_action": action}
    with transaction.atomic():
        for signal in reasons:
            event = SIGNAL_EVENTS.get(signal)
            if event is None:
                continue
            extra = {k: v for k, v in details.items() if k in ("travel", "failing_accounts", "geo_fence")}
            record(
                type=event,
                user=user,
                outcome=Outcome.DENIED if action == "deny" else Outcome.INFO,
                reason=signal,
                details={**common, **extra},
                country=place.country,
            )
        if action == "deny":
            record(
                type=EventType.RISK_LOGIN_DENIED,
                user=user,
                outcome=Outcome.DENIED,
                reason=",".join(reasons)[:255],
                details={**common, "risk_reasons": reasons},
                country=place.country,
            )
    request._risk_decision = decision  # type: ignore[attr-defined]
    request._risk_decision_user = user.pk  # type: ignore[attr-defined]
    if channel == "web" and hasattr(request, "session"):
        request.session[SESSION_KEY] = {"user": user.pk, **decision.as_dict()}
    return decision


def pending_decision(*, request: HttpRequest, user: User) -> RiskDecision | None:
    """The decision taken at the password step of this web login, if any."""
    cached = getattr(request, "_risk_decision", None)
    if isinstance(cached, RiskDecision) and getattr(request, "_risk_decision_user", None) == user.pk:
        return cached
    stored = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if isinstance(stored, dict) and stored.get("user") == user.pk:
        return RiskDecision.from_dict(stored, user=user)
    return None


# --- After the login ----------------------------------------------------------------------------


def _device_upsert(*, user: User, decision: RiskDecision, request: HttpRequest) -> tuple[KnownDevice | None, bool]:
    if not decision.device_id_hash:
        return None, False
    place = decision.place or locate(client_ip(request))
    now = timezone.now()
    ua = request.META.get("HTTP_USER_AGENT", "")
    values = {
        "last_seen_at": now,
        "last_ip": client_ip(request),
        "last_country": place.country,
        "last_place": place.label[:120],
    }
    device = KnownDevice.objects.select_for_update().filter(user=user, device_id_hash=decision.device_id_hash).first()
    if device is not None:
        for key, value in values.items():
            setattr(device, key, value)
        device.save(update_fields=list(values))
        return device, False
    try:
        with transaction.atomic():
            device = KnownDevice.objects.create(
                user=user,
                device_id_hash=decision.device_id_hash,
                kind=KnownDevice.Kind.MOBILE if decision.channel == "api" else KnownDevice.Kind.WEB,
                name=decision.device_name or device_name(ua) or "Unknown device",
                ua_family=context.current().ua_family[:64],
                first_seen_at=now,
                **values,
            )
    except IntegrityError:  # the same device finishing two logins at once
        return KnownDevice.objects.get(user=user, device_id_hash=decision.device_id_hash), False
    return device, True


def login_succeeded(
    *, request: HttpRequest, user: User, decision: RiskDecision | None = None, amr: list[str] | None = None
) -> KnownDevice | None:
    """Remembers the device and the place of this login, and alerts the user about a new one.

    Exactly one alert per new device: the device row records that it was alerted.
    """
    if decision is None:
        decision = pending_decision(request=request, user=user) or evaluate_login(
            request=request, user=user, channel="web", device_id=None
        )
    place = decision.place or locate(client_ip(request))
    now = timezone.now()
    with transaction.atomic():
        device, _created = _device_upsert(user=user, decision=decision, request=request)
        profile, _ = RiskProfile.objects.select_for_update().get_or_create(user=user)
        profile.last_login_at = now
        profile.last_login_ip = client_ip(request) if not place.is_local else None
        if place.country:
            profile.last_login_country = place.country
            profile.last_login_latitude = place.latitude
            profile.last_login_longitude = place.longitude
            if place.country not in profile.seen_countries:
                profile.seen_countries = [*profile.seen_countries, place.country]
        profile.save()

        alert_reasons = [r for r in decision.reasons if r in ALERT_SIGNALS]
        if "new_device" in alert_reasons and not _first_alert_for_device(user=user, device=device, request=request):
            alert_reasons.remove("new_device")
        if alert_reasons:
            _alert_send(user=user, device=device, decision=decision, reasons=alert_reasons, place=place, amr=amr)
    if hasattr(request, "session"):
        request.session.pop(SESSION_KEY, None)
    return device


def _first_alert_for_device(*, user: User, device: KnownDevice | None, request: HttpRequest) -> bool:
    if device is not None:
        return device.alerted_at is None
    # An app login without a device id cannot be remembered; one alert a day per app and user.
    key = "risk-alert-nodevice:" + keyed_hash(f"{user.pk}:{request.META.get('HTTP_USER_AGENT', '')}", purpose="alert")
    return bool(cache.add(key[:80], 1, timeout=24 * 60 * 60))


def _not_me_link(alert: LoginAlert) -> str:
    token = signing.dumps({"a": str(alert.id)}, salt=NOT_ME_SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("risk:not_me", kwargs={"token": token})


def _alert_send(
    *,
    user: User,
    device: KnownDevice | None,
    decision: RiskDecision,
    reasons: list[str],
    place: Place,
    amr: list[str] | None,
) -> LoginAlert:
    now = timezone.now()
    alert = LoginAlert.objects.create(
        user=user,
        device=device,
        reasons=reasons,
        device_name=decision.device_name[:120],
        place=place.label[:120],
        ip=place.ip or None,
        created_at=now,
    )
    if device is not None and "new_device" in reasons:
        device.alerted_at = now
        device.save(update_fields=["alerted_at"])
    what = "a new device" if "new_device" in reasons else "a new country"
    email_enqueue(
        to=user.email,
        template="risk_new_login",
        context={
            "user": user,
            "what": what,
            "device_name": alert.device_name,
            "place": alert.place,
            "ip": place.ip,
            "when": now,
            "link": _not_me_link(alert),
            "valid_days": max(1, settings.RISK_NOT_ME_LINK_MAX_AGE // 86400),
        },
        purpose="risk_alert",
        user=user,
    )
    channels = ["email"]
    if user.phone and user.phone_verified:
        sms_enqueue(
            to=user.phone,
            body=(
                f"{settings.BANK_NAME}: new sign-in from {alert.device_name}, {alert.place}, "
                f"{now:%d %b %H:%M} UTC. Not you? Open the link in our email or call us."
            ),
            purpose="risk_alert",
            user=user,
        )
        channels.append("sms")
    record(
        type=EventType.RISK_ALERT_SENT,
        user=user,
        outcome=Outcome.INFO,
        reason=",".join(reasons),
        details={
            "alert_id": str(alert.id),
            "channels": channels,
            "device_name": alert.device_name,
            "place": alert.place,
            "amr": amr or [],
        },
    )
    return alert


# --- "This wasn't me" ---------------------------------------------------------------------------


def not_me_alert(*, token: str) -> LoginAlert:
    """The alert a "this wasn't me" link points at; RiskError when the link is bad or too old."""
    try:
        data = signing.loads(token, salt=NOT_ME_SALT, max_age=settings.RISK_NOT_ME_LINK_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise RiskError("This link has expired. If you think someone else is using your account, call us.") from exc
    except signing.BadSignature as exc:
        raise RiskError("This link is not valid.") from exc
    alert = LoginAlert.objects.select_related("user").filter(id=str(data.get("a", ""))).first() if data else None
    if alert is None:
        raise RiskError("This link is not valid.")
    return alert


def not_me_confirm(*, token: str) -> User:
    """The user says a login was not theirs: every session and token ends, the password must be
    reset (a link is emailed), remembered devices lose their trust and the reported device is forgotten."""
    alert = not_me_alert(token=token)
    from accounts import services as accounts_services

    with transaction.atomic():
        locked = LoginAlert.objects.select_for_update().select_related("user").get(pk=alert.pk)
        user = locked.user
        if locked.reported_at is not None:
            return user
        locked.reported_at = timezone.now()
        locked.save(update_fields=["reported_at"])
        ended = accounts_services.sessions_end_all(user=user, reason="not_me", actor=user)
        user.must_reset_password = True
        user.save(update_fields=["must_reset_password"])
        device_trust_end_all(user=user, reason="not_me")
        forgotten = ""
        if locked.device_id is not None:
            forgotten = str(locked.device_id)
            KnownDevice.objects.filter(pk=locked.device_id, user=user).delete()
        record(
            type=EventType.RISK_NOT_ME,
            user=user,
            outcome=Outcome.SUCCESS,
            reason="reported_by_user",
            details={
                "alert_id": str(locked.id),
                "sessions_ended": ended,
                "forgotten_device": forgotten,
                "device_name": locked.device_name,
                "place": locked.place,
            },
        )
        accounts_services.password_reset_request(email=user.email)
    return user


# --- Devices ---------------------------------------------------------------------------------------


def current_device(*, request: HttpRequest, user: User, device_id: str | None = None) -> KnownDevice | None:
    from risk.devices import device_id_from_cookie

    raw = valid_device_id(device_id) if device_id is not None else device_id_from_cookie(request)
    if not raw:
        return None
    return KnownDevice.objects.filter(user=user, device_id_hash=device_id_hash(raw)).first()


def device_trust(
    *, request: HttpRequest, user: User, days: int | None = None, device_id: str | None = None
) -> KnownDevice | None:
    """ "Remember this device": after a second-factor login it skips the second factor for `days`
    (RISK_DEVICE_TRUST_DAYS) unless another signal fires."""
    days = settings.RISK_DEVICE_TRUST_DAYS if days is None else days
    if days <= 0:
        return None
    with transaction.atomic():
        device = current_device(request=request, user=user, device_id=device_id)
        if device is None:
            decision = pending_decision(request=request, user=user)
            if decision is None or not decision.device_id_hash:
                return None
            device, _ = _device_upsert(user=user, decision=decision, request=request)
            if device is None:
                return None
        device.trusted_until = timezone.now() + timedelta(days=days)
        device.save(update_fields=["trusted_until"])
        record(
            type=EventType.RISK_DEVICE_TRUSTED,
            user=user,
            details={"device": str(device.pk), "device_name": device.name, "days": days},
        )
    return device


def device_trust_end_all(*, user: User, reason: str, actor: User | None = None) -> int:
    with transaction.atomic():
        count = KnownDevice.objects.filter(user=user, trusted_until__isnull=False).update(trusted_until=None)
        if count:
            record(
                type=EventType.RISK_DEVICE_TRUST_ENDED,
                user=user,
                actor=actor or user,
                reason=reason,
                details={"devices": count},
            )
    return count


def device_rename(*, user: User, device_pk: str, name: str) -> KnownDevice:
    name = " ".join(name.split())[:120]
    if not name:
        raise RiskError("Please give the device a name.")
    with transaction.atomic():
        device = KnownDevice.objects.select_for_update().filter(user=user, pk=device_pk).first()
        if device is None:
            raise KnownDevice.DoesNotExist
        old = device.name
        device.name = name
        device.save(update_fields=["name"])
        record(
            type=EventType.RISK_DEVICE_RENAMED,
            user=user,
            details={"device": str(device.pk), "from": old, "to": name},
        )
    return device


def device_forget(*, user: User, device_pk: str) -> None:
    """Forgets a device: its trust ends, and its next sign-in counts as a new device again."""
    with transaction.atomic():
        device = KnownDevice.objects.select_for_update().filter(user=user, pk=device_pk).first()
        if device is None:
            raise KnownDevice.DoesNotExist
        record(
            type=EventType.RISK_DEVICE_FORGOTTEN,
            user=user,
            details={"device": str(device.pk), "device_name": device.name, "was_trusted": device.is_trusted},
        )
        device.delete()


def allowed_countries_set(*, user: User, countries: list[str]) -> RiskProfile:
    """Geo-fencing chosen by the user: logins from elsewhere are refused (RISK_POLICY geo_blocked)."""
    cleaned = sorted({c.strip().upper() for c in countries if c.strip()})
    with transaction.atomic():
        profile, _ = RiskProfile.objects.select_for_update().get_or_create(user=user)
        before = list(profile.allowed_countries)
        profile.allowed_countries = cleaned
        profile.save(update_fields=["allowed_countries"])
        record(
            type=EventType.RISK_ALLOWED_COUNTRIES_CHANGED,
            user=user,
            details={"from": before, "to": cleaned},
        )
    return profile


# --- Emailed sign-in code: a risky login of a user who has no second factor ---------------------

LOGIN_CODE_SESSION_KEY = "risk_login_code"
LOGIN_CODE_PURPOSE = "risk-login-code"


def login_code_start(*, request: HttpRequest, user: User, next_url: str, decision: RiskDecision) -> None:
    """Holds the login (not signed in) and emails a 6-digit code to the account's verified address.

    The mfa app's code_send needs an enrolled email factor; a user without any factor still
    controls the mailbox they verified at sign-up, which is what this step proves.
    """
    cap_key = f"risk-login-codes:{user.pk}"
    cache.add(cap_key, 0, timeout=3600)
    if int(cache.incr(cap_key)) > settings.RISK_LOGIN_CODE_HOURLY_CAP:
        record(
            type=EventType.RATE_LIMITED,
            outcome=Outcome.DENIED,
            user=user,
            reason="risk_login_code_hourly_cap",
            details={"risk_reasons": decision.reasons},
        )
        raise RiskError("We have sent too many sign-in codes to this account. Please try again in an hour.")
    code = f"{secrets.randbelow(10**6):06d}"
    now = timezone.now()
    request.session.cycle_key()
    request.session[LOGIN_CODE_SESSION_KEY] = {
        "uid": user.pk,
        "next": next_url,
        "hash": keyed_hash(code, purpose=LOGIN_CODE_PURPOSE),
        "expires": (now + timedelta(seconds=settings.RISK_LOGIN_CODE_TTL_SECONDS)).timestamp(),
        "attempts": 0,
        "decision": decision.as_dict(),
    }
    with transaction.atomic():
        email_enqueue(
            to=user.email,
            template="risk_login_code",
            context={
                "user": user,
                "code": code,
                "device_name": decision.device_name,
                "place": (decision.place.label if decision.place else ""),
                "when": now,
                "minutes": max(1, settings.RISK_LOGIN_CODE_TTL_SECONDS // 60),
            },
            purpose="risk_login_code",
            user=user,
        )
        record(
            type=EventType.RISK_LOGIN_CODE_SENT,
            user=user,
            outcome=Outcome.INFO,
            reason=",".join(decision.reasons)[:255],
            details={
                "risk_reasons": decision.reasons,
                "device_name": decision.device_name,
                "sent_to": user.masked_email,
            },
        )


def login_code_pending(*, request: HttpRequest) -> User | None:
    pending = request.session.get(LOGIN_CODE_SESSION_KEY)
    if not isinstance(pending, dict) or timezone.now().timestamp() > float(pending.get("expires", 0)):
        request.session.pop(LOGIN_CODE_SESSION_KEY, None)
        return None
    return User.objects.filter(pk=int(pending.get("uid") or 0), is_active=True).first()


def login_code_verify(*, request: HttpRequest, code: str) -> tuple[User, RiskDecision, str]:
    """Checks the emailed code: single use, expires, 3 tries. Returns (user, decision, next_url)."""
    pending = request.session.get(LOGIN_CODE_SESSION_KEY)
    user = login_code_pending(request=request)
    if user is None or not isinstance(pending, dict):
        raise RiskError("Your sign-in has expired. Please sign in again.")
    candidate = keyed_hash("".join(code.split())[:12], purpose=LOGIN_CODE_PURPOSE)
    if not constant_time_equals(candidate, str(pending.get("hash", ""))):
        attempts = int(pending.get("attempts", 0)) + 1
        record(
            type=EventType.RISK_LOGIN_CODE_FAILED,
            user=user,
            outcome=Outcome.FAILURE,
            reason="wrong_code",
            details={"attempt": attempts},
        )
        if attempts >= settings.RISK_LOGIN_CODE_MAX_ATTEMPTS:
            request.session.pop(LOGIN_CODE_SESSION_KEY, None)
            raise RiskError("That code was wrong too many times. Please sign in again.")
        request.session[LOGIN_CODE_SESSION_KEY] = {**pending, "attempts": attempts}
        left = settings.RISK_LOGIN_CODE_MAX_ATTEMPTS - attempts
        raise RiskError(f"That code is not right. {left} attempt{'s' if left != 1 else ''} left.")
    request.session.pop(LOGIN_CODE_SESSION_KEY, None)
    decision = RiskDecision.from_dict(pending.get("decision") or {}, user=user)
    return user, decision, str(pending.get("next") or "/")
