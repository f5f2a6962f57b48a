"""Redis restarted empty must not bring back anything that had ended (issue 17, item 3).

A private redis-server (no persistence, tests/faults/conftest.py) holds the cache, the sessions,
the revocation list and the failure counters. Each test ends or counts something, kills Redis
and starts it again empty (what a restart without persistence, a FLUSHDB or a failover to an
empty replica leaves), then tries what an attacker would: the access token of a logged-out
login, a validly signed token naming a sid that never existed, the cookie of an ended web
session, the right password on a locked account, a login without the CAPTCHA it owed.
"""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta
from typing import Any, cast

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import revocation, tokens
from accounts.models import User, UserSession
from audit.events import EventType
from audit.models import AuditEvent
from tests.accounts.factories import UserFactory
from tests.conftest import FIREFOX_UA

pytestmark = [pytest.mark.slow]


@pytest.fixture
def redis(settings: Any, private_redis: Any) -> Any:
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = private_redis.url
    settings.CACHES = caches  # Django resets its cache connections on this setting change
    settings.REDIS_URL = private_redis.url
    return private_redis


def _wipe(redis: Any) -> None:
    """Redis restarted with nothing in it."""
    redis.stop()
    redis.start()


def _web(ip: str = "203.0.113.20") -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=FIREFOX_UA, raise_request_exception=False)


def _api(ip: str = "203.0.113.21") -> APIClient:
    return APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT="BankApp/3.1 (iOS 17)", raise_request_exception=False)


def _me(api: APIClient, access: str) -> Any:
    return api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {access}")


def _api_login(api: APIClient, user: Any, password: str) -> dict[str, Any]:
    response = api.post("/api/v1/auth/login", {"email": user.email, "password": password}, format="json")
    assert response.status_code == 200, response.content[:300]
    return dict(response.json())


def test_a_logged_out_access_token_stays_refused_after_redis_comes_back_empty(
    redis: Any, user: Any, password: str
) -> None:
    api = _api()
    ended, live = _api_login(api, user, password), _api_login(api, user, password)
    assert api.post("/api/v1/auth/logout", {"refresh": ended["refresh"]}, format="json").status_code == 204
    assert _me(api, ended["access"]).json()["code"] == "token_revoked"

    _wipe(redis)
    refused = _me(api, ended["access"])
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    refresh = api.post("/api/v1/auth/token/refresh", {"refresh": ended["refresh"]}, format="json")
    assert refresh.status_code == 401
    # The other login of the same user was never ended: it keeps working.
    assert _me(api, live["access"]).status_code == 200

    # The registry's answer was written back: the revocation list is warm again, without SQL.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ended_sid = str(UserSession.objects.get(user=user, end_reason="logout").id)
    with CaptureQueriesContext(connection) as queries:
        assert revocation.revoked_reason(ended_sid) == "logout"
    assert len(queries) == 0


def test_a_signed_token_naming_a_sid_that_never_existed_is_refused(redis: Any, user: Any, password: str) -> None:
    api = _api()
    forged, _ = tokens.access_token_issue(user_public_id=str(user.public_id), sid=str(uuid.uuid4()), amr=["pwd"])
    response = _me(api, forged)
    assert response.status_code == 401 and response.json()["code"] == "token_not_valid"

    # Nor one that borrows another user's live sid.
    victim = cast(User, UserFactory())
    victim_sid = _api_login(api, victim, password)
    victim_session = UserSession.objects.get(user=victim)
    assert _me(api, victim_sid["access"]).status_code == 200  # warm: the sid is cached as the victim's
    borrowed, _ = tokens.access_token_issue(user_public_id=str(user.public_id), sid=str(victim_session.id), amr=["pwd"])
    assert _me(api, borrowed).json()["code"] == "token_not_valid"
    _wipe(redis)
    assert _me(api, borrowed).json()["code"] == "token_not_valid"
    assert _me(api, victim_sid["access"]).status_code == 200


def test_web_sessions_fail_closed_to_the_login_page(redis: Any, user: Any, password: str) -> None:
    web = _web()
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    assert web.get("/").status_code == 200

    _wipe(redis)
    dashboard = web.get("/")
    assert dashboard.status_code == 302 and dashboard["Location"].startswith("/accounts/login/")
    assert web.get(dashboard["Location"]).status_code == 200  # the login page answers again


def test_a_session_whose_revocation_was_lost_is_still_ended(redis: Any, user: Any, password: str) -> None:
    """A failover to a replica that kept the session but missed its revocation (both Redis keys)."""
    web = _web()
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    assert web.get("/").status_code == 200
    session = UserSession.objects.get(user=user, kind=UserSession.Kind.WEB)
    from accounts import services

    services.session_end(user_session=session, reason="ended_by_user")
    from django.core.cache import cache

    cache.delete_many([f"revoked-sid:{session.id}", f"live-sid:{session.id}"])  # the writes the replica missed

    dashboard = web.get("/")
    assert dashboard.status_code == 302 and "reason=ended_by_user" in dashboard["Location"]


def test_a_lockout_survives_redis_coming_back_empty(redis: Any, settings: Any, user: Any, password: str) -> None:
    settings.CAPTCHA_AFTER_FAILURES = 100  # this test is about the lockout alone
    web = _web("203.0.113.30")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        web.post("/accounts/login/", {"email": user.email, "password": "not-the-password-1"})
    assert AuditEvent.objects.filter(type=EventType.LOCKOUT, user=user).count() == 1

    _wipe(redis)
    response = web.post("/accounts/login/", {"email": user.email, "password": password})
    assert response.status_code == 429 and b"sign-in is paused" in response.content
    api = _api("203.0.113.30")
    locked = api.post("/api/v1/auth/login", {"email": user.email, "password": password}, format="json")
    assert locked.status_code == 429
    assert not UserSession.objects.filter(user=user).exists()


def test_a_captcha_demand_survives_redis_coming_back_empty(
    redis: Any, settings: Any, user: Any, password: str, solve_captcha: Any, time_machine: Any
) -> None:
    from django.utils import timezone

    time_machine.move_to(timezone.now(), tick=False)
    web = _web("203.0.113.40")
    for _ in range(settings.CAPTCHA_AFTER_FAILURES):
        web.post("/accounts/login/", {"email": user.email, "password": "not-the-password-1"})
    solution = solve_captcha(web)  # solved before the loss: its "spent" mark will be lost with Redis
    demanded = web.post("/accounts/login/", {"email": user.email, "password": password})
    assert demanded.status_code == 200 and b"complete the check below" in demanded.content

    _wipe(redis)
    time_machine.shift(5)
    # Still demanded, from the same IP for any account and for this account from anywhere.
    again = web.post("/accounts/login/", {"email": user.email, "password": password})
    assert again.status_code == 200 and b"complete the check below" in again.content
    elsewhere = _web("198.51.100.7").post("/accounts/login/", {"email": user.email, "password": password})
    assert b"complete the check below" in elsewhere.content
    # A solution issued before the loss cannot be told from a replay: refused.
    stale = web.post("/accounts/login/", {"email": user.email, "password": password, "altcha": solution})
    assert b"did not succeed" in stale.content
    assert not UserSession.objects.filter(user=user).exists()

    fresh = web.post("/accounts/login/", {"email": user.email, "password": password, "altcha": solve_captcha(web)})
    assert fresh.status_code == 302


def test_the_audit_log_remembers_the_failures_a_redis_lockout_counter_forgot(
    redis: Any, settings: Any, user: Any, password: str, time_machine: Any
) -> None:
    """For a lockout handler that keeps its counters in Redis: what it lost with Redis, and for how long."""
    from django.utils import timezone

    from accounts.security import lockout_failures_forgotten

    settings.CAPTCHA_AFTER_FAILURES = 100
    time_machine.move_to(timezone.now(), tick=False)
    web = _web("203.0.113.50")
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    web = _web("203.0.113.50")
    for _ in range(3):
        web.post("/accounts/login/", {"email": user.email, "password": "not-the-password-1"})
    _wipe(redis)
    assert lockout_failures_forgotten(email=user.email, ip="203.0.113.50") == 3  # not the success before them
    assert lockout_failures_forgotten(email=user.email, ip="198.51.100.50") == 0  # another IP: its own pair
    time_machine.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
    assert lockout_failures_forgotten(email=user.email, ip="203.0.113.50") == 0  # the cool-off has passed
