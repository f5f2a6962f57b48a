"""Risk-based sign-in: device recognition, geolocation signals, the policy, alerts, remembered devices.

One service for web and API: both front ends call `evaluate_login` after the password and
`login_succeeded` once the login is complete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts import security
from accounts.models import User
from audit.events import EventType, Outcome
from audit.services import record
from core import context
from core.crypto import keyed_hash
from core.errors import DomainError
from core.net import client_ip, device_name
from core.sql import PreparedSelect, run_together, update_sql
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
    # What login_updates handed to the login's own statement ("device", "profile"): not written again.
    written: set[str] = field(default_factory=set, compare=False, repr=False)

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
            "device_alerted_at": self.device.alerted_at.timestamp() if self.device and self.device.alerted_at else None,
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
            # The row the decision recognised, as it stood then: no query to take the login further.
            alerted = data.get("device_alerted_at")
            device = KnownDevice(
                pk=data["device_pk"],
                user=user,
                device_id_hash=data.get("device_id_hash", ""),
                name=data.get("device_name", ""),
                alerted_at=datetime.fromtimestamp(float(alerted), tz=UTC) if alerted else None,
            )
            device._state.adding = False
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


# The login's device row, loaded with the user at the password step (RiskStage.user_join).
LOGIN_DEVICE = "risk_login_device"


def api_device_hash(device_id: str | None) -> str:
    raw = valid_device_id(device_id)
    return device_id_hash(raw) if raw else ""


def _device_hash_for(request: HttpRequest, channel: Channel, device_id: str | None) -> str:
    if channel == "web" and device_id is None:
        return device_id_hash(web_device_id(request))
    return api_device_hash(device_id)


def _loaded_profile(user: User) -> RiskProfile | None:
    """The risk profile, from the user row when the login loaded it with select_related."""
    from accounts.pipeline import loaded_related

    loaded, profile = loaded_related(user, "risk_profile")
    return profile if loaded else RiskProfile.objects.filter(user=user).first()


# This user's device by its hashed id: compiled once (core.sql), it runs on every login.
_DEVICE: PreparedSelect[KnownDevice] = PreparedSelect(
    lambda user_id, hashed: KnownDevice.objects.filter(user_id=user_id, device_id_hash=hashed).order_by()[:1],
    -424242,
    "\x00sample-device-hash",
)


def _login_device(user: User, hashed: str) -> KnownDevice | None:
    """The user's device by its hashed id: loaded with the user row when the password step joined
    it (accounts.pipeline.loaded_join), else one query."""
    from accounts.pipeline import loaded_join

    if not hashed:
        return None
    loaded, device = loaded_join(user, LOGIN_DEVICE, hashed)
    return device if loaded else _DEVICE.first(user.pk, hashed)


def evaluate_login(
    *,
    request: HttpRequest,
    user: User,
    channel: Channel = "web",
    device_id: str | None = None,
    device_name_hint: str = "",
    ip: str | None = None,
) -> RiskDecision:
    """Scores a login whose password was right. Records one audit event per signal fired.

    Called once per login attempt (risk.stages.RiskStage), which carries the decision to the end.
    Web: `device_id` None means "this browser's device cookie" (a new one is issued when absent).
    API: the app's `device_id`; without one the device counts as new but cannot be remembered.
    """
    ip = ip or client_ip(request)
    place = getattr(request, "risk_place", None)
    if not isinstance(place, Place) or place.ip != ip:
        place = locate(ip)
    context.update(country=place.country)
    hashed = _device_hash_for(request, channel, device_id)
    device = _login_device(user, hashed)
    profile = _loaded_profile(user)
    has_history = device is not None or (profile is not None and profile.last_login_at is not None)
    if not has_history:
        has_history = KnownDevice.objects.filter(user=user).exists()
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
    failing = security.accounts_failing_from_ip(ip, request=request)
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
    return decision


# --- After the login ----------------------------------------------------------------------------


def _device_upsert(
    *, user: User, decision: RiskDecision, request: HttpRequest, updates: list[tuple[str, list[Any]]]
) -> KnownDevice | None:
    """The device the login recognised gets its UPDATE appended to `updates`; a new one is an
    INSERT ... ON CONFLICT here."""
    if not decision.device_id_hash:
        return None
    place = decision.place or locate(client_ip(request))
    now = timezone.now()
    values = {
        "last_seen_at": now,
        "last_ip": place.ip or client_ip(request),
        "last_country": place.country,
        "last_place": place.label[:120],
    }
    device = decision.device
    if device is not None:
        updates.append(update_sql(KnownDevice, values, pk=device.pk))
        for key, value in values.items():
            setattr(device, key, value)
        return device
    ua = request.META.get("HTTP_USER_AGENT", "")
    candidate = KnownDevice(
        user=user,
        device_id_hash=decision.device_id_hash,
        kind=KnownDevice.Kind.MOBILE if decision.channel == "api" else KnownDevice.Kind.WEB,
        name=decision.device_name or device_name(ua) or "Unknown device",
        ua_family=context.current().ua_family[:64],
        first_seen_at=now,
        **values,
    )
    # The same device finishing two logins at once: the second one updates the first one's row.
    (device,) = KnownDevice.objects.bulk_create(
        [candidate],
        update_conflicts=True,
        unique_fields=["user", "device_id_hash"],
        update_fields=list(values),
    )
    return device


def _profile_upsert(*, user: User, place: Place, ip: str, updates: list[tuple[str, list[Any]]]) -> None:
    """The last login's place and the countries seen: an UPDATE appended to `updates`, or (no
    profile yet) an INSERT ... ON CONFLICT here."""
    now = timezone.now()
    profile = _loaded_profile(user)
    seen = list(profile.seen_countries) if profile is not None else []
    values: dict[str, Any] = {"last_login_at": now, "last_login_ip": None if place.is_local else ip}
    if place.country:
        values.update(
            last_login_country=place.country,
            last_login_latitude=place.latitude,
            last_login_longitude=place.longitude,
        )
        if place.country not in seen:
            values["seen_countries"] = [*seen, place.country]
    if profile is not None:
        updates.append(update_sql(RiskProfile, values, pk=user.pk))
        for key, value in values.items():
            setattr(profile, key, value)
        return
    RiskProfile.objects.bulk_create(
        # user_id, not user=: the new row must not become the user object's cached profile.
        [RiskProfile(user_id=user.pk, **values)],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=list(values),
    )


def login_updates(*, request: HttpRequest, user: User, decision: RiskDecision) -> list[tuple[str, list[Any]]]:
    """The UPDATEs of a returning device and of an existing risk profile that login_succeeded would
    run, for the caller to write with the login's own rows in one statement (the API login:
    accounts.pipeline's Stage.login_writes). login_succeeded then leaves them out; a new device or
    profile (an INSERT ... ON CONFLICT) is still written there."""
    updates: list[tuple[str, list[Any]]] = []
    if decision.device is not None and "device" not in decision.written:
        _device_upsert(user=user, decision=decision, request=request, updates=updates)
        decision.written.add("device")
    if _loaded_profile(user) is not None and "profile" not in decision.written:
        place = decision.place or locate(client_ip(request))
        _profile_upsert(user=user, place=place, ip=place.ip or client_ip(request), updates=updates)
        decision.written.add("profile")
    return updates


def login_succeeded(
    *, request: HttpRequest, user: User, decision: RiskDecision, amr: list[str] | None = None
) -> KnownDevice | None:
    """Remembers the device and the place of this login, and alerts the user about a new one.

    Exactly one alert per new device: the device row records that it was alerted. What
    login_updates already handed to the login's own statement is not written again.
    """
    place = decision.place or locate(client_ip(request))
    with transaction.atomic(savepoint=False):
        # A returning device and profile: both UPDATEs in one statement (core.sql.run_together).
        updates: list[tuple[str, list[Any]]] = []
        if "device" in decision.written:
            device = decision.device
        else:
            device = _device_upsert(user=user, decision=decision, request=request, updates=updates)
        if "profile" not in decision.written:
            _profile_upsert(user=user, place=place, ip=place.ip or client_ip(request), updates=updates)
        if updates:
            run_together(updates)
        alert_reasons = [r for r in decision.reasons if r in ALERT_SIGNALS]
        if "new_device" in alert_reasons and not _first_alert_for_device(user=user, device=device, request=request):
            alert_reasons.remove("new_device")
        if alert_reasons:
            _alert_send(user=user, device=device, decision=decision, reasons=alert_reasons, place=place, amr=amr)
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
    *,
    request: HttpRequest,
    user: User,
    days: int | None = None,
    device_id: str | None = None,
    device: KnownDevice | None = None,
) -> KnownDevice | None:
    """ "Remember this device": after a second-factor login it skips the second factor for `days`
    (RISK_DEVICE_TRUST_DAYS) unless another signal fires. `device`: the login's own device row."""
    days = settings.RISK_DEVICE_TRUST_DAYS if days is None else days
    if days <= 0:
        return None
    with transaction.atomic(savepoint=False):
        device = device or current_device(request=request, user=user, device_id=device_id)
        if device is None:
            return None
        device.trusted_until = timezone.now() + timedelta(days=days)
        KnownDevice.objects.filter(pk=device.pk).update(trusted_until=device.trusted_until)
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
