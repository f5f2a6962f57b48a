"""The risk engine through the service both front ends call: each signal alone and together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from accounts import security
from audit.events import EventType, Outcome
from audit.models import AuditEvent
from risk import services
from risk.geo import locate
from risk.models import KnownDevice, LoginAlert, RiskProfile
from tests.risk.conftest import audit_types, risk_alert_emails

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def signal_events(user, type_):
    return AuditEvent.objects.filter(user=user, type=type_)


def test_first_login_is_the_baseline(user, app_login, ip_in, clock):
    decision = app_login(user, ip=ip_in("DE"))
    assert decision.action == "allow"
    assert decision.reasons == []
    assert decision.first_login
    device = KnownDevice.objects.get(user=user)
    assert device.last_country == "DE"
    assert device.name  # from the user agent
    assert device.device_id_hash != "app-device-0001"  # stored hashed
    profile = RiskProfile.objects.get(user=user)
    assert profile.seen_countries == ["DE"]
    assert not any(t.startswith("risk.") for t in audit_types(user))
    assert LoginAlert.objects.count() == 0


def test_new_device_alone_allows_and_alerts_exactly_once(user, app_login, ip_in, clock, run_outbox):
    app_login(user, ip=ip_in("DE"), device_id="phone-aaaaaaaa")
    clock.shift(timedelta(days=1))
    decision = app_login(user, ip=ip_in("DE", 1), device_id="tablet-bbbbbbbb", ua="BankPortalApp/1.0 (iPad)")
    assert decision.reasons == ["new_device"]
    assert decision.action == "allow"
    event = signal_events(user, EventType.RISK_NEW_DEVICE).get()
    assert event.outcome == Outcome.INFO
    assert event.details["channel"] == "api"
    assert event.country == "DE"

    for _ in range(3):
        clock.shift(timedelta(hours=2))
        again = app_login(user, ip=ip_in("DE", 1), device_id="tablet-bbbbbbbb")
        assert again.reasons == []
    run_outbox()
    alerts = risk_alert_emails(mail.outbox)
    assert len(alerts) == 1
    body = alerts[0].body
    assert "Germany" in body
    assert "https://portal.bank.test/security/not-me/" in body
    assert signal_events(user, EventType.RISK_ALERT_SENT).count() == 1
    assert signal_events(user, EventType.RISK_NEW_DEVICE).count() == 1


def test_new_country_alone_requires_a_second_factor(user, app_login, ip_in, clock, run_outbox):
    app_login(user, ip=ip_in("DE"))
    clock.shift(timedelta(days=3))
    decision = app_login(user, ip=ip_in("US"))
    assert decision.reasons == ["new_country"]
    assert decision.action == "mfa"
    assert decision.country == "US"
    event = signal_events(user, EventType.RISK_NEW_COUNTRY).get()
    assert event.country == "US"
    run_outbox()
    assert len(risk_alert_emails(mail.outbox)) == 1
    assert "a new country" in risk_alert_emails(mail.outbox)[0].subject
    assert RiskProfile.objects.get(user=user).seen_countries == ["DE", "US"]


def test_impossible_travel_alone(user, app_login, ip_in, clock):
    app_login(user, ip=ip_in("DE"))
    clock.shift(timedelta(days=5))
    app_login(user, ip=ip_in("AU"))  # a new country then, not impossible after 5 days
    clock.shift(timedelta(days=5))
    back = app_login(user, ip=ip_in("DE"))
    assert back.reasons == []
    clock.shift(timedelta(hours=1))
    decision = app_login(user, ip=ip_in("AU", 1))
    assert decision.reasons == ["impossible_travel"]
    assert decision.action == "mfa"
    event = signal_events(user, EventType.RISK_IMPOSSIBLE_TRAVEL).get()
    assert event.details["travel"]["from_country"] == "DE"
    assert event.details["travel"]["speed_kmh"] > 900
    assert event.details["travel"]["distance_km"] > 10000


def test_a_plausible_journey_is_not_impossible(user, app_login, ip_in, clock):
    app_login(user, ip=ip_in("DE"))
    clock.shift(timedelta(days=5))
    app_login(user, ip=ip_in("AU"))
    clock.shift(timedelta(days=5))
    app_login(user, ip=ip_in("DE"))
    clock.shift(timedelta(hours=30))  # Frankfurt to Sydney in a day and a bit: a long flight
    assert app_login(user, ip=ip_in("AU")).reasons == []


def test_ip_failing_across_many_accounts_alone(user, app_login, ip_in, clock):
    app_login(user, ip=ip_in("DE"))
    attacker_ip = ip_in("DE", 2)
    for n in range(5):
        security.failure_recorded(email=f"victim{n}@example.com", ip=attacker_ip)
    decision = app_login(user, ip=attacker_ip)
    assert decision.reasons == ["ip_failing_many_accounts"]
    assert decision.action == "mfa"
    assert signal_events(user, EventType.RISK_IP_FAILING_MANY_ACCOUNTS).get().details["failing_accounts"] == 5


def test_a_few_failures_do_not_flag_the_ip(user, app_login, ip_in, clock):
    app_login(user, ip=ip_in("DE"))
    for n in range(4):
        security.failure_recorded(email=f"victim{n}@example.com", ip=ip_in("DE", 2))
    assert app_login(user, ip=ip_in("DE", 2)).reasons == []


def test_bank_blocked_country_is_denied(user, app_login, ip_in, clock, settings):
    settings.RISK_BLOCKED_COUNTRIES = ["AU"]
    decision = app_login(user, ip=ip_in("AU"))
    assert decision.action == "deny"
    assert decision.reasons == ["geo_blocked"]
    blocked = signal_events(user, EventType.RISK_GEO_BLOCKED).get()
    assert blocked.outcome == Outcome.DENIED
    assert blocked.details["geo_fence"] == "bank_blocked_list"
    denied = signal_events(user, EventType.RISK_LOGIN_DENIED).get()
    assert denied.outcome == Outcome.DENIED
    assert denied.details["risk_reasons"] == ["geo_blocked"]
    assert not KnownDevice.objects.filter(user=user).exists()


def test_user_allowed_countries_fence(user, app_login, ip_in, clock):
    app_login(user, ip=ip_in("DE"))
    services.allowed_countries_set(user=user, countries=["de", "fr"])
    assert signal_events(user, EventType.RISK_ALLOWED_COUNTRIES_CHANGED).get().details["to"] == ["DE", "FR"]
    clock.shift(timedelta(days=2))
    assert app_login(user, ip=ip_in("DE")).action == "allow"
    refused = app_login(user, ip=ip_in("US"))
    assert refused.action == "deny"
    assert "geo_blocked" in refused.reasons
    assert signal_events(user, EventType.RISK_GEO_BLOCKED).get().details["geo_fence"] == "outside_allowed_countries"
    # The office network is not a country: local addresses pass the fence.
    assert app_login(user, ip="192.168.10.20").action == "allow"


def test_two_signals_together_need_at_least_a_second_factor(user, app_login, ip_in, clock, settings):
    settings.RISK_POLICY = {**settings.RISK_POLICY, "new_country": "allow"}
    app_login(user, ip=ip_in("DE"), device_id="phone-aaaaaaaa")
    clock.shift(timedelta(days=3))
    decision = app_login(user, ip=ip_in("US"), device_id="laptop-cccccccc")
    assert decision.reasons == ["new_device", "new_country"]
    assert decision.action == "mfa"
    assert signal_events(user, EventType.RISK_NEW_DEVICE).count() == 1
    assert signal_events(user, EventType.RISK_NEW_COUNTRY).count() == 1


def test_every_signal_at_once_is_denied_and_each_is_audited(user, app_login, ip_in, clock, settings):
    settings.RISK_BLOCKED_COUNTRIES = ["AU"]
    app_login(user, ip=ip_in("DE"), device_id="phone-aaaaaaaa")
    clock.shift(timedelta(minutes=30))
    attacker_ip = ip_in("AU")
    for n in range(6):
        security.failure_recorded(email=f"victim{n}@example.com", ip=attacker_ip)
    decision = app_login(user, ip=attacker_ip, device_id="evil-dddddddd")
    assert decision.action == "deny"
    assert decision.reasons == [
        "new_device",
        "new_country",
        "impossible_travel",
        "ip_failing_many_accounts",
        "geo_blocked",
    ]
    types = audit_types(user)
    for t in (
        EventType.RISK_NEW_DEVICE,
        EventType.RISK_NEW_COUNTRY,
        EventType.RISK_IMPOSSIBLE_TRAVEL,
        EventType.RISK_IP_FAILING_MANY_ACCOUNTS,
        EventType.RISK_GEO_BLOCKED,
        EventType.RISK_LOGIN_DENIED,
    ):
        assert types.count(t) == 1, t


def test_policy_maps_signals_to_actions(user, app_login, ip_in, clock, settings):
    settings.RISK_POLICY = {**settings.RISK_POLICY, "new_device": "mfa", "new_country": "deny"}
    app_login(user, ip=ip_in("DE"), device_id="phone-aaaaaaaa")
    clock.shift(timedelta(days=3))
    assert app_login(user, ip=ip_in("DE"), device_id="laptop-cccccccc", finish=False).action == "mfa"
    assert app_login(user, ip=ip_in("US"), device_id="phone-aaaaaaaa", finish=False).action == "deny"


def test_app_login_without_device_id_counts_as_new_and_alerts_once(user, app_login, ip_in, clock, run_outbox):
    app_login(user, ip=ip_in("DE"), device_id="phone-aaaaaaaa")
    first = app_login(user, ip=ip_in("DE"), device_id=None)
    second = app_login(user, ip=ip_in("DE"), device_id=None)
    assert first.reasons == second.reasons == ["new_device"]
    run_outbox()
    assert len(risk_alert_emails(mail.outbox)) == 1


def test_a_user_who_must_reset_the_password_is_refused(user, app_login, ip_in, clock):
    user.must_reset_password = True
    user.save()
    decision = app_login(user, ip=ip_in("DE"))
    assert decision.action == "deny"
    assert "password_reset_required" in decision.reasons
    assert "new password" in decision.message
    assert signal_events(user, EventType.RISK_LOGIN_DENIED).count() == 1


def test_alert_is_texted_to_a_verified_phone(user, app_login, ip_in, clock):
    from notifications.models import OutboxMessage

    user.phone = "+447700900123"
    user.phone_verified = True
    user.save()
    app_login(user, ip=ip_in("DE"), device_id="phone-aaaaaaaa")
    app_login(user, ip=ip_in("DE"), device_id="laptop-cccccccc")
    sms = OutboxMessage.objects.get(channel=OutboxMessage.Channel.SMS, purpose="risk_alert")
    assert sms.recipient == "+447700900123"
    assert signal_events(user, EventType.RISK_ALERT_SENT).get().details["channels"] == ["email", "sms"]


def test_geolocation_is_offline_and_local_addresses_are_local(ip_in):
    for ip in ("127.0.0.1", "10.1.2.3", "192.168.0.5", "::1", "fe80::1"):
        place = locate(ip)
        assert place.is_local
        assert place.country == ""
        assert place.label == "a local network"
    de = locate(ip_in("DE"))
    assert (de.country, de.country_name, de.source) == ("DE", "Germany", "geoip2fast")
    assert de.coordinates is not None  # the country's centroid (countryinfo)


def test_a_missing_city_database_falls_back_to_the_embedded_data(settings, ip_in):
    settings.GEOIP_CITY_DB_PATH = "/nonexistent/GeoLite2-City.mmdb"
    place = locate(ip_in("DE", 1))
    assert place.country == "DE"
    assert place.source == "geoip2fast"


def test_time_window_uses_the_last_successful_login(user, app_login, ip_in, clock):
    app_login(user, ip=ip_in("DE"))
    clock.shift(timedelta(days=5))
    app_login(user, ip=ip_in("AU"))
    clock.shift(timedelta(days=5))
    app_login(user, ip=ip_in("DE"))
    clock.shift(timedelta(minutes=20))
    # A refused attempt does not move "the last place": the next try is still judged from Germany.
    assert app_login(user, ip=ip_in("AU"), finish=False).reasons == ["impossible_travel"]
    clock.shift(timedelta(minutes=20))
    assert app_login(user, ip=ip_in("AU"), finish=False).reasons == ["impossible_travel"]
