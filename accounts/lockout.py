"""Lockout counters in Redis: django-axes' cache handler, with the cool-off on the application clock.

axes' AxesCacheHandler counts failures per (account, IP) with Redis INCR (atomic under concurrent
guesses) and lets the key's TTL end the lockout. A TTL follows Redis's clock, not the
application's, so the handler here also keeps when the last counted failure happened: a counter
older than AXES_COOLOFF_TIME is spent, whatever Redis still holds. That also gives the login page
the time the lock lifts without a database query (DESIGN.md: lockout counters live in Redis).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cache, get_client_cache_keys, get_client_username, get_cool_off, get_credentials
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from core.crypto import keyed_hash


def _at_key(key: str) -> str:
    return f"{key}:at"


_KEYS_MEMO = "_axes_client_keys"


def _client_keys(request: Any, credentials: dict[str, Any] | None) -> list[str]:
    """axes' cache keys of (account, IP) for this request, worked out once per request and account
    (a login asks for them up to three times: its one read, the lockout check, the reset)."""
    username = get_client_username(request, credentials)
    memo = getattr(request, _KEYS_MEMO, None)
    if isinstance(memo, tuple) and memo[0] == username:
        return list(memo[1])
    keys = list(get_client_cache_keys(request, credentials))
    if isinstance(request, HttpRequest):
        setattr(request, _KEYS_MEMO, (username, tuple(keys)))
    return keys


def prefetch_keys(request: Any, credentials: dict[str, Any] | None) -> list[str]:
    """What get_failures reads for (account, IP), for the login's one round trip
    (accounts.security.login_prefetch); [] when axes runs another handler."""
    from axes.handlers.proxy import AxesProxyHandler

    from accounts.security import REDIS_EPOCH_KEY

    if not isinstance(AxesProxyHandler.get_implementation(), ClockedAxesCacheHandler):
        return []
    if getattr(settings, "AXES_CACHE", "default") != "default":
        return []
    keys = _client_keys(request, credentials)
    return [*keys, *(_at_key(k) for k in keys), REDIS_EPOCH_KEY]


def _index_key(username: str) -> str:
    """The counters of one account, whatever the IP: a staff unlock by account clears them all."""
    return "axes-index:" + keyed_hash(username or "", purpose="axes-index")[:32]


class ClockedAxesCacheHandler(AxesCacheHandler):
    # axes keeps one handler per process; resolving the cache on each use (not once in __init__)
    # keeps it on the configured Redis when the cache settings change (a reconfigured or test cache).
    @property  # type: ignore[override]
    def cache(self) -> Any:
        return get_cache()

    @cache.setter
    def cache(self, value: Any) -> None:
        """AxesCacheHandler.__init__ assigns the cache of the moment; it is looked up on use instead."""

    def _cooloff_seconds(self, request: Any) -> float:
        cool_off = get_cool_off(request)
        return cool_off.total_seconds() if cool_off is not None else float("inf")

    def _forget_spent(self, request: Any, credentials: dict[str, Any] | None) -> list[str]:
        keys = list(get_client_cache_keys(request, credentials))
        now = timezone.now().timestamp()
        stamps = self.cache.get_many([_at_key(k) for k in keys])
        limit = self._cooloff_seconds(request)
        for key in keys:
            at = stamps.get(_at_key(key))
            if at is not None and now - float(at) >= limit:
                self.cache.delete_many([key, _at_key(key)])
        return keys

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        from accounts.security import REDIS_EPOCH_KEY, lockout_failures_forgotten, take_prefetched
        from core.net import client_ip

        # One MGET: the counters, when each last counted a failure, and the Redis epoch (a
        # password login's first check: read with the login's other counters, login_prefetch).
        keys = _client_keys(request, credentials)
        wanted = [*keys, *(_at_key(k) for k in keys), REDIS_EPOCH_KEY]
        prefetched = take_prefetched(request, "lockout", wanted)
        values = prefetched if prefetched is not None else self.cache.get_many(wanted)
        now = timezone.now().timestamp()
        limit = self._cooloff_seconds(request)
        spent = [k for k in keys if values.get(_at_key(k)) is not None and now - float(values[_at_key(k)]) >= limit]
        if spent:  # a counter older than the cool-off is over, whatever Redis's TTL says
            self.cache.delete_many([*spent, *(_at_key(k) for k in spent)])
        counted = max([int(values.get(k) or 0) for k in keys if k not in spent] or [0])
        # Counters that Redis lost (restarted empty, flushed, failed over) come back from the audit
        # log for the cool-off after the loss (accounts.security.lockout_failures_forgotten).
        if counted >= settings.AXES_FAILURE_LIMIT:
            return counted
        epoch = values.get(REDIS_EPOCH_KEY)
        username = get_client_username(request, credentials) or ""
        forgotten = lockout_failures_forgotten(
            email=username, ip=client_ip(request), epoch=float(epoch) if epoch is not None else None
        )
        return max(counted, forgotten)

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        if request is None:
            return
        keys = self._forget_spent(request, credentials)
        counted = not getattr(request, "axes_locked_out", False)
        super().user_login_failed(sender, credentials, request, **kwargs)
        if counted:
            now = timezone.now().timestamp()
            timeout = int(min(self._cooloff_seconds(request), 366 * 86400)) + 60
            self.cache.set_many({_at_key(k): now for k in keys}, timeout=timeout)
            index = _index_key(get_client_username(request, credentials) or "")
            known = [k for k in (self.cache.get(index) or []) if k not in keys]
            self.cache.set(index, [*known, *keys][-200:], timeout=timeout)

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        """AXES_RESET_ON_SUCCESS: the (account, IP) counters and their stamps go, in one DEL.

        axes' own handler reads each counter first, only to log how many failures it drops. None
        when the login's prefetched read found no counter and no stamp (a failure counted since
        then stays counted, which is stricter)."""
        from accounts.security import prefetched_absent

        if not settings.AXES_RESET_ON_SUCCESS or request is None:
            return
        keys = _client_keys(request, get_credentials(user.get_username()))
        counters = [*keys, *(_at_key(k) for k in keys)]
        if prefetched_absent(request, counters):
            return
        self.cache.delete_many(counters)

    def reset_attempts(self, *, ip_address: str | None = None, username: str | None = None, **kwargs: Any) -> int:
        from axes.models import AccessAttempt

        keys = list(get_client_cache_keys(AccessAttempt(username=username, ip_address=ip_address)))
        if username and ip_address is None:
            keys.extend(self.cache.get(_index_key(username)) or [])
            self.cache.delete(_index_key(username))
        present = self.cache.get_many(keys)
        self.cache.delete_many([*keys, *(_at_key(k) for k in keys)])
        return len(present)

    def locked_until(self, request: Any, credentials: dict[str, Any] | None = None) -> datetime | None:
        """When the lock of this (account, IP) lifts: the last counted failure plus the cool-off."""
        keys = list(get_client_cache_keys(request, credentials))
        stamps = [v for v in self.cache.get_many([_at_key(k) for k in keys]).values() if v is not None]
        if not stamps:
            return None
        return datetime.fromtimestamp(max(float(s) for s in stamps) + self._cooloff_seconds(request), tz=UTC)
