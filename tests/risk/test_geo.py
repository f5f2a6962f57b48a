"""Geolocation: the trusted-proxy rule, the optional city database, caching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from audit.events import EventType
from audit.models import AuditEvent
from risk import geo
from risk.geo import distance_km, locate


@pytest.fixture(autouse=True)
def _fresh_geo_cache():
    geo._locate.cache_clear()
    yield
    geo._locate.cache_clear()


def test_behind_a_trusted_proxy_the_country_comes_from_the_address_it_saw(
    make_client, user, login, ip_in, settings, time_machine
):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.MFA_PROMPT_CUSTOMERS = False
    time_machine.move_to(datetime(2026, 11, 2, 9, 0, tzinfo=UTC), tick=False)
    # The client wrote the left part itself; the proxy appended the address it saw.
    client = make_client(ip="10.0.0.1", HTTP_X_FORWARDED_FOR=f"{ip_in('AU')}, {ip_in('DE')}")
    assert login(client, user).status_code == 302
    event = AuditEvent.objects.get(user=user, type=EventType.LOGIN_SUCCEEDED)
    assert (event.ip, event.country) == (ip_in("DE"), "DE")


class FakeCityReader:
    """Stands in for geoip2.database.Reader over a GeoLite2-City file (none ships with the tests)."""

    places = {
        "198.51.100.1": ("US", "United States", "New York", 40.71, -74.01),
        "198.51.100.2": ("US", "United States", "Los Angeles", 34.05, -118.24),
    }

    def city(self, ip):
        import geoip2.errors

        if ip not in self.places:
            raise geoip2.errors.AddressNotFoundError(ip)
        code, country, city, lat, lon = self.places[ip]
        return SimpleNamespace(
            country=SimpleNamespace(iso_code=code, name=country),
            city=SimpleNamespace(name=city),
            location=SimpleNamespace(latitude=lat, longitude=lon),
        )


@pytest.fixture
def city_db(settings, monkeypatch):
    settings.GEOIP_CITY_DB_PATH = "/data/GeoLite2-City.mmdb"
    monkeypatch.setattr(geo, "_city_reader", lambda path: FakeCityReader())


def test_a_configured_city_database_gives_city_and_coordinates(city_db, ip_in):
    # (TEST-NET addresses are not "local" for the city database in this test: is_local_ip says so.)
    place = geo._lookup_city("198.51.100.2", "/data/GeoLite2-City.mmdb")
    assert place is not None
    assert (place.country, place.city, place.source) == ("US", "Los Angeles", "maxmind")
    assert place.label == "Los Angeles, United States"
    assert place.coordinates == (34.05, -118.24)
    # Addresses the city file does not know fall back to the embedded data.
    assert locate(ip_in("DE")).source == "geoip2fast"


def test_city_coordinates_catch_impossible_travel_inside_one_country(
    city_db, user, monkeypatch, time_machine, settings
):
    from django.contrib.sessions.backends.cache import SessionStore
    from django.test import RequestFactory

    from risk import services

    monkeypatch.setattr(geo, "is_local_ip", lambda ip: False)
    time_machine.move_to(datetime(2026, 11, 2, 9, 0, tzinfo=UTC), tick=False)

    def attempt(ip):
        request = RequestFactory().post("/api/v1/auth/login", REMOTE_ADDR=ip, HTTP_USER_AGENT="BankPortalApp/1.0")
        request.session = SessionStore()
        decision = services.evaluate_login(request=request, user=user, channel="api", device_id="phone-aaaaaaaa")
        services.login_succeeded(request=request, user=user, decision=decision, amr=["pwd"])
        return decision

    attempt("198.51.100.1")
    time_machine.shift(timedelta(hours=1))
    decision = attempt("198.51.100.2")  # New York to Los Angeles (~3,900 km) in an hour
    assert decision.reasons == ["impossible_travel"]
    travel = AuditEvent.objects.get(type=EventType.RISK_IMPOSSIBLE_TRAVEL).details["travel"]
    assert 3800 < travel["distance_km"] < 4100


def test_lookups_are_cached(ip_in):
    ip = ip_in("DE")
    locate(ip)
    hits = geo._locate.cache_info().hits
    locate(ip)
    assert geo._locate.cache_info().hits == hits + 1


def test_distance_is_great_circle():
    london, paris = (51.5072, -0.1276), (48.8566, 2.3522)
    assert 340 < distance_km(london, paris) < 345


def test_unknown_country_codes_have_no_centroid():
    assert geo.country_centroid("ZZ") is None
    assert geo.country_centroid("") is None
    assert geo.country_centroid("DE") is not None
