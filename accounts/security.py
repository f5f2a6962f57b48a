"""Brute-force defence around the password check: failure counters, per-IP rate limits
and the proof-of-work CAPTCHA. Thresholds come from settings, by name."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta

from altcha import v1 as altcha
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from django_ratelimit.core import is_ratelimited

from core.crypto import keyed_hash
from core.net import client_ip


def _account_key(email: str) -> str:
    return "fail-acct:" + keyed_hash(email, purpose="failure-counter")[:32]


def _ip_key(ip: str) -> str:
    return f"fail-ip:{ip}"


def _ip_accounts_key(ip: str) -> str:
    return f"fail-ip-accts:{ip}"


def _incr(key: str) -> int:
    window = settings.FAILURE_WINDOW_SECONDS
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:
        cache.set(key, 1, timeout=window)
        return 1


def failure_recorded(*, email: str, ip: str) -> None:
    _incr(_account_key(email))
    _incr(_ip_key(ip))
    accounts = set(cache.get(_ip_accounts_key(ip)) or [])
    if len(accounts) < 1000:
        accounts.add(keyed_hash(email, purpose="failure-counter")[:16])
        cache.set(_ip_accounts_key(ip), sorted(accounts), timeout=settings.FAILURE_WINDOW_SECONDS)


def failures_cleared(*, email: str) -> None:
    cache.delete(_account_key(email))


def failure_counts(*, email: str, ip: str) -> tuple[int, int]:
    values = cache.get_many([_account_key(email), _ip_key(ip)])
    return int(values.get(_account_key(email), 0)), int(values.get(_ip_key(ip), 0))


def accounts_failing_from_ip(ip: str) -> int:
    """How many distinct accounts failed a password from this IP in the window."""
    return len(cache.get(_ip_accounts_key(ip)) or [])


def captcha_required(*, email: str, ip: str) -> bool:
    account_failures, ip_failures = failure_counts(email=email, ip=ip)
    threshold = settings.CAPTCHA_AFTER_FAILURES
    return account_failures >= threshold or ip_failures >= threshold


def rate_limited(request: HttpRequest, *, name: str) -> bool:
    """Counts this request against the per-IP limit `name` of settings.RATE_LIMITS."""
    if not settings.RATELIMIT_ENABLE:
        return False
    return bool(
        is_ratelimited(
            request,
            group=f"bp:{name}",
            key=lambda _group, req: client_ip(req),
            rate=settings.RATE_LIMITS[name],
            increment=True,
        )
    )


# --- Proof-of-work CAPTCHA (ALTCHA, self-hosted) ------------------------------------


def _captcha_key() -> str:
    return keyed_hash("altcha", purpose="captcha-hmac")


def captcha_challenge() -> dict[str, object]:
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
    """Checks a solved challenge; each solution is accepted once."""
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
    spent_key = "captcha-spent:" + str(decoded.get("signature", ""))[:128]
    if not cache.add(spent_key, 1, timeout=settings.CAPTCHA_TTL_SECONDS + 60):
        return CaptchaResult(False, "replayed")
    return CaptchaResult(True)
