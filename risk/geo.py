"""Where an IP address is, offline.

The embedded geoip2fast data (country level) by default; a MaxMind GeoLite2/GeoIP2 City file
read with `geoip2` when GEOIP_CITY_DB_PATH names one (city and coordinates). Private,
loopback and link-local addresses are "local". Lookups are cached in process memory.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings

from core.net import is_local_ip

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Place:
    ip: str
    country: str = ""  # ISO 3166 alpha-2, "" when local or unknown
    country_name: str = ""
    city: str = ""
    latitude: float | None = None
    longitude: float | None = None
    is_local: bool = False
    source: str = ""  # "geoip2fast", "maxmind", "local", ""

    @property
    def label(self) -> str:
        """Approximate place in words: "Berlin, Germany", "Germany", "a local network"."""
        if self.is_local:
            return "a local network"
        if not self.country:
            return "an unknown location"
        name = self.country_name or self.country
        return f"{self.city}, {name}" if self.city else name

    @property
    def coordinates(self) -> tuple[float, float] | None:
        """The city's coordinates when known, else the country's centroid, else None."""
        if self.latitude is not None and self.longitude is not None:
            return (self.latitude, self.longitude)
        return country_centroid(self.country)


@lru_cache(maxsize=1)
def _fast_reader() -> Any:
    from geoip2fast import GeoIP2Fast

    return GeoIP2Fast()


@lru_cache(maxsize=4)
def _city_reader(path: str) -> Any:
    import geoip2.database

    return geoip2.database.Reader(path)


def _lookup_city(ip: str, path: str) -> Place | None:
    import geoip2.errors

    try:
        found = _city_reader(path).city(ip)
    except geoip2.errors.AddressNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("GeoIP city database unusable (%s); falling back to geoip2fast", exc.__class__.__name__)
        return None
    code = (found.country.iso_code or "").upper()
    if not code:
        return None
    return Place(
        ip=ip,
        country=code,
        country_name=found.country.name or code,
        city=found.city.name or "",
        latitude=found.location.latitude,
        longitude=found.location.longitude,
        source="maxmind",
    )


def _lookup_fast(ip: str) -> Place:
    result = _fast_reader().lookup(ip)
    code = str(getattr(result, "country_code", "") or "").upper()
    if getattr(result, "is_private", False):
        return Place(ip=ip, is_local=True, source="local")
    if len(code) != 2 or not code.isalpha():
        return Place(ip=ip, source="geoip2fast")
    return Place(ip=ip, country=code, country_name=str(result.country_name or code), source="geoip2fast")


@lru_cache(maxsize=8192)
def _locate(ip: str, city_path: str) -> Place:
    if is_local_ip(ip):
        return Place(ip=ip, is_local=True, source="local")
    if city_path:
        place = _lookup_city(ip, city_path)
        if place is not None:
            return place
    return _lookup_fast(ip)


def locate(ip: str | None) -> Place:
    """The approximate place of an IP address; never raises."""
    if not ip:
        return Place(ip="", is_local=True, source="local")
    try:
        return _locate(ip, settings.GEOIP_CITY_DB_PATH)
    except Exception:  # a broken data file must never break a login
        logger.exception("geolocation failed")
        return Place(ip=ip)


@lru_cache(maxsize=512)
def country_centroid(code: str) -> tuple[float, float] | None:
    """Approximate centre of a country (countryinfo), for travel checks without city data."""
    if not code:
        return None
    try:
        from countryinfo import CountryInfo

        latlng = CountryInfo(code).latlng()
    except Exception:  # unknown codes (e.g. XK) have no centroid
        return None
    if not latlng or len(latlng) != 2:
        return None
    return (float(latlng[0]), float(latlng[1]))


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))


def country_name(code: str) -> str:
    if not code:
        return ""
    try:
        import pycountry

        found = pycountry.countries.get(alpha_2=code.upper())
    except (KeyError, LookupError):
        found = None
    return str(getattr(found, "common_name", None) or getattr(found, "name", None) or code)
