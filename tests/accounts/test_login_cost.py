"""What one login costs in SQL statements (issue 13's budget; bench/ prints the same census under load).

Counted with Django's CaptureQueriesContext (savepoints included; inside the test's transaction
there is no BEGIN/COMMIT, which a real login adds): a web password login with no second factor
at most 7 statements, an API one at most 2 (issue 15: the user with the app's device, then the
session, token and audit rows, last_login, the device and risk profile in one statement); with a second
factor, both requests together at most 14. A regression here is a slower login for every customer.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory
from tests.mfa.conftest import add_totp as add_totp  # the fixture


def _new_user() -> User:
    return cast(User, UserFactory())


@pytest.fixture(autouse=True)
def _steady_redis() -> None:
    """A Redis that has kept its counters for a day (not one that just lost them: accounts.security)."""
    import time

    from django.core.cache import cache

    cache.set("redis-epoch", float(int(time.time()) - 86400), timeout=None)


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _known_device_user(client: Client, **login: Any) -> User:
    user = _new_user()
    # A first login makes the device and the place known; the measured one is an everyday login.
    first = client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD}, **login)
    assert first.status_code == 302
    client.post("/accounts/logout/")
    return user


def _sql(fn: Any) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = fn()
    return response, [q["sql"] for q in captured.captured_queries]


def test_web_password_login_costs_at_most_7_statements(settings: Any) -> None:
    settings.MFA_PROMPT_CUSTOMERS = False
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.10")
    user = _known_device_user(client)
    response, sql = _sql(lambda: client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD}))
    assert response.status_code == 302 and response["Location"] == "/"
    assert len(sql) <= 7, "\n".join(sql)


def test_api_password_login_costs_at_most_2_statements() -> None:
    """The user (with its risk profile, MFA state and the app's device: RiskStage.user_join), then
    ONE write: the token family, its refresh token, the two audit events, last_login, the device
    and the risk profile."""
    from django.utils import timezone

    from risk.models import KnownDevice, RiskProfile

    api = Client(HTTP_USER_AGENT="BankPortalApp/1.0", REMOTE_ADDR="203.0.113.10")
    user = _new_user()
    body = {"email": user.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0001"}
    assert api.post("/api/v1/auth/login", body, content_type="application/json").status_code == 200
    before = timezone.now()
    response, sql = _sql(lambda: api.post("/api/v1/auth/login", body, content_type="application/json"))
    assert response.status_code == 200 and "access" in response.json()
    assert len(sql) <= 2, "\n".join(sql)
    # ... and the one write still wrote all of it.
    user.refresh_from_db()
    assert user.last_login is not None and user.last_login >= before
    assert KnownDevice.objects.get(user=user).last_seen_at >= before
    profile = RiskProfile.objects.get(user=user)
    assert profile.last_login_at is not None and profile.last_login_at >= before
    assert user.user_sessions.filter(kind="mobile", created_at__gte=before).count() == 1


class _RoundTrips:
    """Redis round trips (a command or a whole pipeline is one write to the socket)."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def __enter__(self) -> _RoundTrips:
        import redis.connection

        self._cls = redis.connection.AbstractConnection
        self._orig = self._cls.send_packed_command
        trips = self

        def send_packed_command(conn: Any, command: Any, check_health: bool = True) -> Any:
            first = command[0] if isinstance(command, list) and command else command
            trips.commands.append(bytes(first)[:40].decode("latin-1"))
            return trips._orig(conn, command, check_health)

        self._cls.send_packed_command = send_packed_command  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._cls.send_packed_command = self._orig  # type: ignore[method-assign]


def test_api_password_login_costs_at_most_2_redis_round_trips() -> None:
    """The API throttle, then one round trip for the per-IP rate limit, the lockout counters, the
    CAPTCHA's failure lists, the IP's failing accounts (risk) and the factor summary (mfa); a
    success with no failure counted clears nothing."""
    api = Client(HTTP_USER_AGENT="BankPortalApp/1.0", REMOTE_ADDR="203.0.113.10")
    user = _new_user()
    body = {"email": user.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0001"}
    assert api.post("/api/v1/auth/login", body, content_type="application/json").status_code == 200
    with _RoundTrips() as trips:
        response = api.post("/api/v1/auth/login", body, content_type="application/json")
    assert response.status_code == 200 and "access" in response.json()
    assert len(trips.commands) <= 2, trips.commands


@pytest.mark.parametrize("channel", ["web", "api"])
def test_login_with_a_second_factor_costs_at_most_14_statements(channel: str, add_totp: Any, time_machine: Any) -> None:
    from django.utils import timezone

    time_machine.move_to(timezone.now(), tick=False)
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.10")
    user = _known_device_user(client)  # an everyday login: the browser and the place are known
    body = {"email": user.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0001"}
    if channel == "api":  # the app's device known too
        assert client.post("/api/v1/auth/login", body, content_type="application/json").status_code == 200
    _device, totp = add_totp(user)
    if channel == "web":
        first, sql_first = _sql(
            lambda: client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
        )
        assert first["Location"] == "/accounts/login/mfa/"
        done, sql_second = _sql(lambda: client.post("/accounts/login/mfa/", {"method": "totp", "code": totp.now()}))
        assert done.status_code == 302
    else:
        first, sql_first = _sql(lambda: client.post("/api/v1/auth/login", body, content_type="application/json"))
        token = first.json()["mfa_token"]
        done, sql_second = _sql(
            lambda: client.post(
                "/api/v1/auth/mfa/verify",
                {"mfa_token": token, "method": "totp", "code": totp.now()},
                content_type="application/json",
            )
        )
        assert done.status_code == 200
    total = sql_first + sql_second
    assert len(total) <= 14, "\n".join(total)
