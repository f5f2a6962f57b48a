"""What one login costs in SQL statements (issue 13's budget; bench/ prints the same census under load).

Counted with Django's CaptureQueriesContext (savepoints included; inside the test's transaction
there is no BEGIN/COMMIT, which a real login adds): a web password login with no second factor
at most 7 statements, an API one at most 5 (issue 15: the user, the device, the session, token
and audit rows in one statement, last_login, the device and risk profile in one); with a second
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


def test_api_password_login_costs_at_most_5_statements() -> None:
    api = Client(HTTP_USER_AGENT="BankPortalApp/1.0", REMOTE_ADDR="203.0.113.10")
    user = _new_user()
    body = {"email": user.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0001"}
    assert api.post("/api/v1/auth/login", body, content_type="application/json").status_code == 200
    response, sql = _sql(lambda: api.post("/api/v1/auth/login", body, content_type="application/json"))
    assert response.status_code == 200 and "access" in response.json()
    assert len(sql) <= 5, "\n".join(sql)


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
