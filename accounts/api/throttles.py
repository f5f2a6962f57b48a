"""DRF throttles counted in the default cache (Redis), keyed by the client IP as the rest of
the portal sees it (core.net.client_ip, honouring TRUSTED_PROXY_COUNT).

DRF's SimpleRateThrottle keeps the list of the period's request times in one cache key, read
and rewritten (pickled) by every request: the work per request grows with the rate, and every
request of one IP (all of a NAT, or the bench's 127.0.0.1) rewrites the same key, so concurrent
requests overwrite each other's entries and the limit leaks. Here the count is a sliding window
of two fixed-window counters in Redis (INCR is atomic): one pipelined round trip per request,
constant work at any rate, no lost counts. The estimate of the last period's requests is this
window's count plus the previous window's, weighted by how much of it still overlaps.

A bearer request names its counters ahead (`prefetch_plan`, from accounts.api.authentication,
which knows the user's primary key from the token's public id): the INCR and the previous
window's GET then travel in the request's one round trip with the revocation entries and the
user row (core.cached.prefetch), and `throttle_allowed` decides on those answers, at the time
they were counted. Same counts, same limit, same refusal; an increment the request never got to
use (it failed authentication first) is taken back when the request ends.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from core import cached
from core.net import client_ip


def _redis_client() -> Any:
    """The default cache's Redis client (Django's Redis backend), or None for any other backend."""
    get_client = getattr(getattr(cache, "_cache", None), "get_client", None)
    return get_client(None, write=True) if get_client is not None else None


class ScopedIPThrottle(ScopedRateThrottle):
    @property
    def THROTTLE_RATES(self) -> Any:  # type: ignore[override]
        """Read at each request, so settings overrides (tests, fuzzing) take effect."""
        return dict(api_settings.DEFAULT_THROTTLE_RATES)

    def get_ident(self, request: Any) -> str:
        return client_ip(getattr(request, "_request", request))

    @classmethod
    def prefetch_plan(cls, view: Any, ident: Any) -> tuple[tuple[str, int], str] | None:
        """For an authenticated request of the user with primary key `ident`: the counter to
        increment (key, ttl) and the previous window's key, as `allow_request` will count them,
        or None when this view is not throttled by this class. Notes the time of the count."""
        throttle = cls()
        throttle.scope = getattr(view, throttle.scope_attr, None)
        if not throttle.scope:
            return None
        throttle.rate = throttle.get_rate()
        if throttle.rate is None:
            return None
        _, duration = throttle.parse_rate(throttle.rate)
        key = throttle.cache_format % {"scope": throttle.scope, "ident": ident}
        now = throttle.timer()
        window = int(now // float(duration or 1))
        cached.note(f"throttle-now:{key}", now)
        return (f"{key}:{window}", int(2 * float(duration or 1)) + 1), f"{key}:{window - 1}"

    def throttle_allowed(self, key: str) -> bool:
        counted_at = cached.take_note(f"throttle-now:{key}")
        now = self.timer() if counted_at is None else float(counted_at)
        duration = float(self.duration or 1)
        limit = int(self.num_requests or 0)
        window = int(now // duration)
        elapsed = now - window * duration
        count = cached.take_counter(f"{key}:{window}") if counted_at is not None else None
        current = cache.make_and_validate_key(f"{key}:{window}")
        if count is not None:  # counted in the request's prefetch
            before = cached.read_many([f"{key}:{window - 1}"]).get(f"{key}:{window - 1}")
        elif _redis_client() is not None:
            previous = cache.make_and_validate_key(f"{key}:{window - 1}")
            pipe = _redis_client().pipeline(transaction=False)
            pipe.incr(current)
            pipe.expire(current, int(2 * duration) + 1)
            pipe.get(previous)
            count, _, before = pipe.execute()
        else:  # another cache backend (`make run`'s local memory): the same window through the cache API
            cache.add(f"{key}:{window}", 0, timeout=int(2 * duration) + 1)
            count = cache.incr(f"{key}:{window}")
            before = cache.get(f"{key}:{window - 1}")
        before = int(before or 0)
        weight = 1.0 - elapsed / duration
        if before * weight + (count - 1) < limit:
            return True
        # A refused request is not counted (as in DRF).
        client = _redis_client()
        if client is not None:
            client.decr(current)
        else:
            cache.decr(f"{key}:{window}")
        # When the estimate falls below the limit: the previous window slides out, or a new window.
        room = limit - (count - 1)
        if before and room > 0:
            self._wait = max(0.0, duration * (1.0 - room / before) - elapsed)
        else:
            self._wait = duration - elapsed
        return False

    def allow_request(self, request: Any, view: Any) -> bool:
        # ScopedRateThrottle's scope and rate from the view, then this class's counter.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        return self.throttle_allowed(self.key)

    def wait(self) -> float | None:
        wait = float(getattr(self, "_wait", None) or self.duration or 1)
        return float(max(1, math.ceil(wait)))
