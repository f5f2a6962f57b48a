"""Redis stopped: logins fail closed with a clear 503 (page and JSON), nothing half-done, and recover.

Sessions, throttles, CAPTCHA counters and the token revocation list live in Redis. The test
points the cache at a private redis-server (tests/faults/conftest.py), kills it, and checks the
web and API logins refuse with 503 rather than a 500 and leave no session and no audit row
claiming success; then it starts Redis again and the same logins succeed.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import UserSession
from audit.events import EventType
from audit.models import AuditEvent
from tests.conftest import FIREFOX_UA

pytestmark = [pytest.mark.slow]


@pytest.fixture
def cache_on_private_redis(settings: Any, private_redis: Any) -> Any:
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = private_redis.url
    settings.CACHES = caches  # Django resets its cache connections on this setting change
    settings.REDIS_URL = private_redis.url
    return private_redis


def _web() -> Client:
    # raise_request_exception=False: the test sees what a browser sees, not the re-raised exception.
    return Client(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT=FIREFOX_UA, raise_request_exception=False)


def _api() -> APIClient:
    return APIClient(REMOTE_ADDR="203.0.113.11", HTTP_USER_AGENT="BankApp/3.1 (iOS 17)", raise_request_exception=False)


def _assert_503_page(response: Any) -> None:
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("text/html")
    assert b"temporarily unavailable" in response.content
    assert response["Retry-After"]
    assert "sessionid" not in response.cookies or not response.cookies["sessionid"].value


def _assert_503_json(response: Any) -> None:
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "service_unavailable" and isinstance(body["detail"], str) and body["detail"]


def _successes(user: Any) -> int:
    return AuditEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED, user=user).count()


def test_login_fails_closed_with_503_while_redis_is_down_and_recovers(
    cache_on_private_redis: Any, user: Any, password: str
) -> None:
    redis = cache_on_private_redis
    web, api = _web(), _api()
    assert web.get("/accounts/login/").status_code == 200  # up: the page works

    redis.stop()
    page = web.get("/accounts/login/")
    assert page.status_code in (200, 503)  # the empty form needs no session; either way not a 500
    _assert_503_page(web.post("/accounts/login/", {"email": user.email, "password": password}))
    _assert_503_json(api.post("/api/v1/auth/login", {"email": user.email, "password": password}, format="json"))
    assert api.get("/api/v1/me").status_code == 401  # no credentials: refused before anything needs Redis

    # Nothing half-done: no login, no session row, no audit row claiming success.
    assert _successes(user) == 0
    assert not UserSession.objects.filter(user=user).exists()

    redis.start()
    web, api = _web(), _api()
    response = web.post("/accounts/login/", {"email": user.email, "password": password})
    assert response.status_code == 302, response.content[:300]
    assert web.get("/").status_code == 200
    tokens = api.post("/api/v1/auth/login", {"email": user.email, "password": password}, format="json")
    assert tokens.status_code == 200, tokens.content[:300]
    me = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert me.status_code == 200
    assert _successes(user) == 2


def test_a_logged_in_user_gets_503_not_500_when_redis_goes_away(
    cache_on_private_redis: Any, user: Any, password: str
) -> None:
    redis = cache_on_private_redis
    web, api = _web(), _api()
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    tokens = api.post("/api/v1/auth/login", {"email": user.email, "password": password}, format="json").json()

    redis.stop()
    # Django's cache session store reads an unreachable session as empty: the user is logged out
    # (fail closed), and the login page itself answers 503 until Redis is back.
    dashboard = web.get("/")
    assert dashboard.status_code == 302 and dashboard["Location"].startswith("/accounts/login/")
    _assert_503_page(web.get(dashboard["Location"]))
    _assert_503_json(api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"))
    _assert_503_json(api.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"))

    redis.start()  # an empty Redis: the web session is gone (log in again), the bearer token still works
    assert web.get("/").status_code == 302
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}").status_code == 200


def test_a_posting_whose_commit_finds_redis_gone_still_succeeds_and_later_callbacks_run(
    cache_on_private_redis: Any, django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    """The account lists' generations are renewed after the posting commits. If Redis died in
    between, the money has moved: nothing may claim otherwise (no exception, so no 503 for a
    payment that went through), the transaction's later on_commit callbacks still run, and the
    miss is logged. The lists tagged with the old generation lag for at most their TTL."""
    from decimal import Decimal

    from django.db import transaction

    from payments import ledger, services
    from payments.selectors import ledger_inconsistencies
    from tests.accounts.factories import UserFactory

    redis = cache_on_private_redis
    payer = services.account_open(owner=cast(Any, UserFactory()), currency="EUR", opening_balance=Decimal("100.00"))
    payee = services.account_open(owner=cast(Any, UserFactory()), currency="EUR", opening_balance=Decimal("0.00"))
    later: list[str] = []
    with (
        caplog.at_level("WARNING", logger="core.cached"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        ledger.posting_execute(
            kind="transfer",
            description="t",
            currency="EUR",
            lines=[(payer.id, -Decimal("30.00")), (payee.id, Decimal("30.00"))],
            created_at=payer.created_at,
        )
        transaction.on_commit(lambda: later.append("ran"))
        redis.stop()
    assert len(callbacks) == 2 and later == ["ran"]
    payer.refresh_from_db()
    payee.refresh_from_db()
    assert (payer.balance, payee.balance) == (Decimal("70.00"), Decimal("30.00"))
    assert ledger_inconsistencies() == []
    assert any("not renewed after a commit" in r.getMessage() for r in caplog.records)


def test_an_invalidation_whose_commit_finds_redis_gone_is_logged_not_raised(
    cache_on_private_redis: Any, django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    """`invalidate` writes a generation at once (a Redis error there rolls the change back) and again
    at commit; the second one failing is logged, the change having committed."""
    from django.db import transaction

    from core import cached

    later: list[str] = []
    with caplog.at_level("WARNING", logger="core.cached"), django_capture_on_commit_callbacks(execute=True):
        cached.invalidate("factors", 42)  # Redis up: the first write succeeds
        transaction.on_commit(lambda: later.append("ran"))
        cache_on_private_redis.stop()
    assert later == ["ran"]
    assert any("not renewed after a commit" in r.getMessage() and "factors" in r.getMessage() for r in caplog.records)
