"""Brute-force defence around the password check: failure counters, per-IP rate limits
and the proof-of-work CAPTCHA. Thresholds come from settings, by name."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from altcha import v1 as altcha
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from django_ratelimit.core import is_ratelimited

from core import metrics
from core.crypto import keyed_hash
from core.net import client_ip


def _account_key(email: str) -> str:
    return "fail-acct:" + keyed_hash(email, purpose="failure-counter")[:32]


def _ip_key(ip: str) -> str:
    return f"fail-ip:{ip}"


def _ip_accounts_key(ip: str) -> str:
    return f"fail-ip-accts:{ip}"


# Failures are kept as timestamps (capped) rather than relying on Redis TTLs alone, so the
# window follows the application clock (and frozen time in tests); the TTL only cleans up.
_MAX_KEPT = 100


def _recent(values: list[Any] | None, now: float) -> list[Any]:
    window = settings.FAILURE_WINDOW_SECONDS
    return [v for v in (values or []) if now - float(v[0] if isinstance(v, list) else v) < window]


def failure_recorded(*, email: str, ip: str) -> None:
    now = timezone.now().timestamp()
    ttl = settings.FAILURE_WINDOW_SECONDS + 60
    account_hash = keyed_hash(email, purpose="failure-counter")[:16]
    for key in (_account_key(email), _ip_key(ip)):
        cache.set(key, [*_recent(cache.get(key), now), now][-_MAX_KEPT:], timeout=ttl)
    accounts = [entry for entry in _recent(cache.get(_ip_accounts_key(ip)), now) if entry[1] != account_hash]
    cache.set(_ip_accounts_key(ip), [*accounts, [now, account_hash]][-1000:], timeout=ttl)


def failures_cleared(*, email: str, request: HttpRequest | None = None) -> None:
    """A successful password clears the account's failure counter (a DEL; none when this request's
    prefetched read found no counter: a failure counted since then stays, which is stricter)."""
    if request is not None and prefetched_absent(request, [_account_key(email)]):
        return
    cache.delete(_account_key(email))


def failure_counts(*, email: str, ip: str) -> tuple[int, int]:
    now = timezone.now().timestamp()
    values = cache.get_many([_account_key(email), _ip_key(ip)])
    return len(_recent(values.get(_account_key(email)), now)), len(_recent(values.get(_ip_key(ip)), now))


def accounts_failing_from_ip(ip: str, *, request: HttpRequest | None = None) -> int:
    """How many distinct accounts failed a password from this IP in the window (from the login's
    prefetched read when `request` has one)."""
    key = _ip_accounts_key(ip)
    found = take_prefetched(request, "ip-accounts", [key]) if request is not None else None
    value = found.get(key) if found is not None else cache.get(key)
    return len(_recent(value, timezone.now().timestamp()))


# --- One Redis round trip for a password login's counters ---------------------------------------
#
# A password login reads, before the hash: its per-IP rate-limit counter (an increment), the
# lockout counters of (account, IP) with their stamps, the CAPTCHA's failure lists, the Redis
# epoch, the IP's failing-accounts list (the risk stage's signal) and the values that the login
# stages registered under the "login" tag of core.cached (the factor summary). Their keys are all
# known once the account is looked up, so they travel in one round trip (core.cached.prefetch:
# INCR + EXPIRE + MGET in one script) instead of one each. Each check takes the answer once
# (`take_prefetched`); a second check in the same request (the lockout after a failure) reads
# Redis again. A success clears counters only when the read found any (`prefetched_absent`).

_PREFETCH_ATTR = "_login_counters_prefetched"
LOGIN_PREFETCH_TAG = "login"


@dataclass
class _Prefetched:
    keys: frozenset[str]
    values: dict[str, Any]
    counters: dict[str, int]
    taken: set[str]


def _rate_limit_counter(request: HttpRequest, name: str) -> tuple[str, int, int]:
    """django-ratelimit's key of the limit `name` for this request's IP (unprefixed: the cache
    adds its prefix), its time to live and the limit."""
    from django_ratelimit import ALL
    from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, _split_rate

    rate = settings.RATE_LIMITS[name]
    limit, period = _split_rate(rate)
    value = client_ip(request)
    key = _make_cache_key(f"bp:{name}", _get_window(value, period), rate, value, ALL)
    return key, period + EXPIRATION_FUDGE, limit


def login_prefetch(request: HttpRequest, *, email: str, ip: str, lockout_keys: list[str], user_pk: Any = None) -> bool:
    """Counts the login against `login_ip` and reads the login's other counters, in one round trip.

    `lockout_keys`: the lockout handler's keys for (account, IP) (accounts.lockout.prefetch_keys).
    False (nothing done) without Redis as the default cache or outside a request's scope: each
    check then asks Redis itself.
    """
    from core import cached

    if getattr(settings, "RATELIMIT_USE_CACHE", "default") != "default":
        return False
    incr: list[tuple[str, int]] = []
    counter = ""
    if settings.RATELIMIT_ENABLE:
        counter, ttl, _limit = _rate_limit_counter(request, "login_ip")
        incr.append((counter, ttl))
    keys = list(dict.fromkeys([*lockout_keys, _account_key(email), _ip_key(ip), _ip_accounts_key(ip), _EPOCH_KEY]))
    tagged = cached.tagged_keys((LOGIN_PREFETCH_TAG,), user_pk) if user_pk is not None else []
    if not cached.prefetch([*keys, *tagged], incr=incr):
        return False
    counters: dict[str, int] = {}
    if counter:
        count = cached.take_counter(counter)
        if count is not None:
            counters["login_ip"] = count
    # This module's answers leave the request's prefetch scope now; the tagged ones stay for their readers.
    values = cached.read_many(keys)
    setattr(request, _PREFETCH_ATTR, _Prefetched(frozenset(keys), values, counters, set()))
    return True


def take_prefetched(request: HttpRequest | None, reader: str, keys: list[str]) -> dict[str, Any] | None:
    """The prefetched values of `keys` (absent ones left out) for the first check named `reader`
    in this request; None when they were not prefetched or that check already took them."""
    found: _Prefetched | None = getattr(request, _PREFETCH_ATTR, None)
    if found is None or reader in found.taken or not found.keys.issuperset(keys):
        return None
    found.taken.add(reader)
    return {key: found.values[key] for key in keys if key in found.values}


def prefetched_absent(request: HttpRequest, keys: list[str]) -> bool:
    """True when this request's prefetch read all of `keys` and found none of them."""
    found: _Prefetched | None = getattr(request, _PREFETCH_ATTR, None)
    return found is not None and found.keys.issuperset(keys) and not any(key in found.values for key in keys)


# Set (without expiry) by the first check that finds it missing: when this Redis's data began.
# Missing or young means Redis lost the failure counters (restarted empty, flushed, failed over).
_EPOCH_KEY = REDIS_EPOCH_KEY = "redis-epoch"


def redis_epoch() -> float:
    """When the failure counters in Redis began: the first check after Redis lost them."""
    found = cache.get(_EPOCH_KEY)  # one round trip once set
    if found is not None:
        return float(found)
    # Whole seconds, as the CAPTCHA's `expires` it is compared with.
    now = float(int(timezone.now().timestamp()))
    cache.add(_EPOCH_KEY, now, timeout=None)
    return float(cache.get(_EPOCH_KEY) or now)


def captcha_required(*, email: str, ip: str, request: HttpRequest | None = None) -> bool:
    now = timezone.now().timestamp()
    keys = [_account_key(email), _ip_key(ip), _EPOCH_KEY]
    found = take_prefetched(request, "captcha", keys) if request is not None else None
    values = found if found is not None else cache.get_many(keys)
    threshold = settings.CAPTCHA_AFTER_FAILURES
    account_failures = len(_recent(values.get(_account_key(email)), now))
    ip_failures = len(_recent(values.get(_ip_key(ip)), now))
    if account_failures >= threshold or ip_failures >= threshold:
        return True
    epoch = values.get(_EPOCH_KEY)
    if epoch is None:
        epoch = redis_epoch()
    if now - float(epoch) >= settings.FAILURE_WINDOW_SECONDS:
        return False
    # Redis lost its counters less than a window ago: the audit log (PostgreSQL) still has the
    # failures it forgot, so a CAPTCHA demanded before the loss is still demanded after it.
    account_failures, ip_failures = _failures_in_audit_log(
        email=email, ip=ip, since=now - settings.FAILURE_WINDOW_SECONDS
    )
    return account_failures >= threshold or ip_failures >= threshold


def _failures_in_audit_log(*, email: str, ip: str, since: float) -> tuple[int, int]:
    from datetime import UTC, datetime

    from django.db.models import Count, Q

    from audit.events import EventType, Outcome
    from audit.models import AuditEvent

    by_account, by_ip = Q(user__email=email) if email else Q(pk__in=[]), Q(ip=ip)
    counts = AuditEvent.objects.filter(
        by_account | by_ip,
        type=EventType.LOGIN_FAILED,
        outcome=Outcome.FAILURE,
        occurred_at__gte=datetime.fromtimestamp(since, tz=UTC),
    ).aggregate(account=Count("id", filter=by_account), ip=Count("id", filter=by_ip))
    return int(counts["account"] or 0), int(counts["ip"] or 0)


def lockout_failures_forgotten(*, email: str, ip: str, epoch: float | None = None) -> int:
    """Failed passwords for (account, IP) that a Redis loss may have wiped from lockout counters kept
    in Redis: those of the audit log since the pair's last successful login (or the account's last
    unlock or password reset), within the lockout's cool-off, while Redis's data is younger than
    that cool-off; otherwise 0. `epoch`: REDIS_EPOCH_KEY's value when the caller already read it
    (in the same MGET as its counters), else one Redis read.

    A Redis-backed lockout handler takes max(its count, this), so a lockout resumes after Redis
    restarts empty, fails over or is flushed, instead of granting a fresh set of guesses.
    """
    from datetime import UTC, datetime

    from django.db.models import Q

    from audit.events import EventType, Outcome
    from audit.models import AuditEvent

    cool_off = settings.AXES_COOLOFF_TIME.total_seconds()
    now = timezone.now().timestamp()
    if not email or now - (epoch if epoch is not None else redis_epoch()) >= cool_off:
        return 0
    since = datetime.fromtimestamp(now - cool_off, tz=UTC)
    events = AuditEvent.objects.filter(user__email=email, occurred_at__gte=since)
    # What resets the pair's counter: a login from that IP; a staff unlock or a password reset, any IP.
    resets = events.filter(
        Q(type=EventType.LOGIN_SUCCEEDED, ip=ip)
        | Q(type__in=[EventType.ADMIN_ACCOUNT_UNLOCKED, EventType.PASSWORD_RESET_COMPLETED])
    )
    last_reset = resets.order_by("-id").values_list("id", flat=True).first()
    failed = events.filter(type=EventType.LOGIN_FAILED, outcome=Outcome.FAILURE, ip=ip)
    if last_reset is not None:
        failed = failed.filter(id__gt=last_reset)
    return failed.count()


def rate_limited(request: HttpRequest, *, name: str) -> bool:
    """Counts this request against the per-IP limit `name` of settings.RATE_LIMITS.

    django-ratelimit's counter (its key and fixed window, so every caller of a limit shares it),
    counted in one pipelined round trip: SET NX (the window's first request) and INCR, where
    its get_usage sends ADD, then EXISTS and INCRBY. A password login has already counted it with
    its other counters (login_prefetch): that count is used once.
    """
    if not settings.RATELIMIT_ENABLE:
        return False
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    found: _Prefetched | None = getattr(request, _PREFETCH_ATTR, None)
    if found is not None and name in found.counters:  # counted in the login's prefetch (login_prefetch)
        return bool(found.counters.pop(name) > _rate_limit_counter(request, name)[2])
    rate = settings.RATE_LIMITS[name]
    store = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if not isinstance(store, RedisCache):  # dev mode's local memory: the library's own path
        return bool(
            is_ratelimited(
                request, group=f"bp:{name}", key=lambda _group, req: client_ip(req), rate=rate, increment=True
            )
        )
    raw_key, ttl, limit = _rate_limit_counter(request, name)
    key = store.make_and_validate_key(raw_key)
    client = store._cache.get_client(key, write=True)  # type: ignore[attr-defined]
    pipe = client.pipeline(transaction=False)
    pipe.set(key, 0, nx=True, ex=ttl)
    pipe.incr(key)
    _, count = pipe.execute()
    if count is None:  # as django-ratelimit: a counter that cannot be read limits (unless failing open)
        return not getattr(settings, "RATELIMIT_FAIL_OPEN", False)
    return bool(int(count) > limit)


# --- Proof-of-work CAPTCHA (ALTCHA, self-hosted) ------------------------------------


def _captcha_key() -> str:
    return keyed_hash("altcha", purpose="captcha-hmac")


def captcha_challenge() -> dict[str, object]:
    redis_epoch()  # a challenge issued now is never older than the counters it is checked against
    challenge = altcha.create_challenge(
        altcha.ChallengeOptions(
            hmac_key=_captcha_key(),
            max_number=settings.CAPTCHA_MAX_NUMBER,
            expires=timezone.now() + timedelta(seconds=settings.CAPTCHA_TTL_SECONDS),
        )
    )
    return {
        "algorithm": challenge.algorithm,
        "challenge": challenge.challenge,
        "maxnumber": challenge.max_number,
        "salt": challenge.salt,
        "signature": challenge.signature,
    }


@dataclass(frozen=True)
class CaptchaResult:
    ok: bool
    reason: str = ""


def captcha_verify(payload: str) -> CaptchaResult:
    """Checks a solved challenge; each solution is accepted once. Called only where one is demanded."""
    result = _captcha_verify(payload)
    metrics.captcha_checked(result.reason if not result.ok else "passed")
    return result


def _captcha_verify(payload: str) -> CaptchaResult:
    if not payload:
        return CaptchaResult(False, "missing")
    try:
        decoded = json.loads(base64.b64decode(payload, validate=True))
        if not isinstance(decoded, dict):
            return CaptchaResult(False, "malformed")
        ok, error = altcha.verify_solution(payload, _captcha_key(), check_expires=True)
    except (ValueError, TypeError, KeyError):
        return CaptchaResult(False, "malformed")
    if not ok:
        return CaptchaResult(False, error or "invalid")
    if _issued_before_redis_epoch(decoded):
        # Its "spent" mark may have been lost with Redis: a replay could not be told apart.
        return CaptchaResult(False, "stale")
    spent_key = "captcha-spent:" + str(decoded.get("signature", ""))[:128]
    if not cache.add(spent_key, 1, timeout=settings.CAPTCHA_TTL_SECONDS + 60):
        return CaptchaResult(False, "replayed")
    return CaptchaResult(True)


def _issued_before_redis_epoch(decoded: dict[str, Any]) -> bool:
    from urllib.parse import parse_qs

    salt = str(decoded.get("salt", ""))
    expires = parse_qs(salt.partition("?")[2]).get("expires", [""])[0]
    if not expires.isdigit():
        return False
    issued = int(expires) - settings.CAPTCHA_TTL_SECONDS
    return issued < redis_epoch()
