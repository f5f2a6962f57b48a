"""Is this login (`sid`) still live? Redis answers warm requests; PostgreSQL decides.

One check serves web sessions, mobile token families and provider tokens. Redis holds two
caches of the session registry (accounts.UserSession), never the authority:

* `revoked-sid:<sid>`: the login ended (the reason). Written at once by `revoke()` when a
  login ends, and whenever the registry says so. It lives as long as the longest credential
  that can still carry the sid, so a revoked token is refused without a database query.
* `live-sid:<sid>`: the registry said "live, belongs to <subject>" at most
  REVOCATION_LIVE_CACHE_SECONDS ago, so a warm request costs no SQL either.

Neither key present (a sid never seen, or Redis restarted empty, flushed, or failed over) means
one indexed read of the registry row: a sid that does not exist, has ended, or names another
subject is refused, and the answer is written back. Losing Redis therefore rebuilds the
revocation list lazily, one sid at a time, from the registry: nothing ended comes back. A
failover to a replica that missed the last writes can only bring back a revocation for as long
as a `live-sid` entry it still has (REVOCATION_LIVE_CACHE_SECONDS), never until token expiry.

`keys(sid)` names the two entries, so a bearer request can read them in its one round trip with
the rest of what it needs (core.cached.prefetch); `revoked_reason` then takes them from there.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.cache import cache

from core.cached import read_many

_PREFIX = "revoked-sid:"
_LIVE_PREFIX = "live-sid:"
# Reasons given for a sid the registry does not know, or that names another subject.
UNKNOWN = "unknown"


def _ttl() -> int:
    access = int(getattr(settings, "JWT_ACCESS_LIFETIME_SECONDS", 15 * 60))
    return max(int(settings.SESSION_ABSOLUTE_TIMEOUT), access) + 60


def _live_ttl() -> int:
    return max(1, int(getattr(settings, "REVOCATION_LIVE_CACHE_SECONDS", 30)))


def keys(sid: str) -> list[str]:
    """The Redis entries `revoked_reason` reads for this sid (for core.cached.prefetch)."""
    return [f"{_PREFIX}{sid}", f"{_LIVE_PREFIX}{sid}"]


def revoke(sid: str, *, reason: str) -> None:
    cache.set(f"{_PREFIX}{sid}", reason or "ended", timeout=_ttl())
    cache.delete(f"{_LIVE_PREFIX}{sid}")


def revoked_reason(sid: str, *, subject: str | None = None) -> str | None:
    """None while the login is live (and, with `subject`, belongs to that user's public id);
    otherwise why it is not: its end reason, or "unknown" for a sid the registry does not have.

    Warm: one Redis round trip (none when the request prefetched `keys(sid)`). Cold: that, one
    indexed registry read, one Redis write.
    """
    revoked_key, live_key = f"{_PREFIX}{sid}", f"{_LIVE_PREFIX}{sid}"
    found = read_many([revoked_key, live_key])
    revoked = found.get(revoked_key)
    if revoked:
        return str(revoked)
    owner = found.get(live_key)
    if owner is not None:
        return None if subject is None or str(owner) == subject else UNKNOWN
    return _check_registry(sid, subject=subject)


def _check_registry(sid: str, *, subject: str | None) -> str | None:
    from accounts.models import UserSession

    try:
        uuid.UUID(str(sid))
    except ValueError:
        return UNKNOWN
    row = UserSession.objects.filter(id=sid).values_list("ended_at", "end_reason", "user__public_id").first()
    if row is None:
        return UNKNOWN
    ended_at, end_reason, owner = row
    if ended_at is not None:
        reason = end_reason or "ended"
        cache.set(f"{_PREFIX}{sid}", reason, timeout=_ttl())
        return str(reason)
    cache.set(f"{_LIVE_PREFIX}{sid}", str(owner), timeout=_live_ttl())
    if subject is not None and str(owner) != subject:
        return UNKNOWN
    return None
