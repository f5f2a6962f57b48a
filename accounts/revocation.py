"""The revocation list: ended logins (`sid`s) kept in Redis, checked on every request.

One list serves web sessions and mobile token families. An entry lives as long as the
longest credential that can still carry the sid (a web session's absolute lifetime or an
access token's lifetime), so the check never needs the database.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

_PREFIX = "revoked-sid:"


def _ttl() -> int:
    access = int(getattr(settings, "JWT_ACCESS_LIFETIME_SECONDS", 15 * 60))
    return max(int(settings.SESSION_ABSOLUTE_TIMEOUT), access) + 60


def revoke(sid: str, *, reason: str) -> None:
    cache.set(f"{_PREFIX}{sid}", reason or "ended", timeout=_ttl())


def revoked_reason(sid: str) -> str | None:
    value = cache.get(f"{_PREFIX}{sid}")
    return str(value) if value else None
