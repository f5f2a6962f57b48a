"""Redis behind Sentinel for Django's cache (sessions, rate limits, revocation list, lockouts).

Django's Redis backend builds its connection pools with `pool_class.from_url(LOCATION, **OPTIONS)`.
With REDIS_SENTINELS set (host:port list), settings make this the pool class: LOCATION keeps the
credentials and database (`redis://:PASSWORD@primary/DB`; its host is not used: the Sentinels
name the primary of REDIS_SENTINEL_SERVICE),
and every connection asks the Sentinels where the current primary is, so a failover moves the
portal to the new primary without a restart (a connection in use during the switch fails once
and the request gets the 503 of core.failsafe; the next one reaches the new primary).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from redis.sentinel import Sentinel, SentinelConnectionPool


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    addresses = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        if item.strip():
            addresses.append((host or item.strip(), int(port) if host and port else 26379))
    return addresses


class SentinelPool(SentinelConnectionPool):
    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SentinelPool:  # type: ignore[override]
        parts = urlsplit(url)
        db = int((parts.path or "/0").strip("/") or 0)
        auth = {
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
        }
        sentinel_auth = {"password": settings.REDIS_SENTINEL_PASSWORD} if settings.REDIS_SENTINEL_PASSWORD else {}
        timeouts = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout") if k in kwargs}
        manager = Sentinel(
            sentinel_addresses(str(settings.REDIS_SENTINELS)), sentinel_kwargs={**sentinel_auth, **timeouts}
        )
        return cls(str(settings.REDIS_SENTINEL_SERVICE), manager, db=db, **auth, **kwargs)
