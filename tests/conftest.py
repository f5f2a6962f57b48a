from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Each test starts with an empty Redis (database 15, the tests' own)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _db_for_all(db: None) -> None:
    """Every test here touches PostgreSQL."""


@pytest.fixture
def password() -> str:
    return DEFAULT_PASSWORD


@pytest.fixture
def user() -> User:
    return cast(User, UserFactory())


@pytest.fixture
def client() -> Client:
    return Client(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT=FIREFOX_UA)


FIREFOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def make_client() -> Callable[..., Client]:
    def _make(ip: str = "203.0.113.10", user_agent: str = FIREFOX_UA, **extra: Any) -> Client:
        return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent, **extra)

    return _make


@pytest.fixture
def run_outbox() -> Callable[[], int]:
    """Delivers every due outbox message, as the beat task does (on-commit hooks do not run in tests)."""
    from notifications.tasks import outbox_resend_pending

    def _run() -> int:
        return int(outbox_resend_pending())

    return _run


@pytest.fixture
def login(password: str) -> Callable[..., Any]:
    """Logs a user in through the real login page."""

    def _login(client: Client, user: User, pw: str | None = None) -> Any:
        return client.post("/accounts/login/", {"email": user.email, "password": pw or password})

    return _login


@pytest.fixture
def outbox() -> list[Any]:
    return mail.outbox


@pytest.fixture
def solve_captcha() -> Callable[[Client], str]:
    """Fetches a proof-of-work challenge from the login page's endpoint and solves it, as the widget does."""
    from tests.captcha import solve

    def _solve(client: Client) -> str:
        return solve(client.get("/accounts/captcha/").json())

    return _solve
