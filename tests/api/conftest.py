from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from mfa.models import EmailFactor, TOTPFactor
from tests.api.helpers import APP_USER_AGENT


@pytest.fixture
def api() -> APIClient:
    return APIClient(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT=APP_USER_AGENT)


@pytest.fixture
def api_login(api: APIClient, password: str) -> Callable[..., Any]:
    def _login(user: User, pw: str | None = None, **extra: Any) -> Any:
        return api.post("/api/v1/auth/login", {"email": user.email, "password": pw or password, **extra}, format="json")

    return _login


@pytest.fixture
def throttle_rate(settings: Any) -> Callable[[str, str], None]:
    """Sets one DRF throttle rate for this test (rates are read per request)."""

    def _set(scope: str, rate: str) -> None:
        rest = dict(settings.REST_FRAMEWORK)
        rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], scope: rate}
        settings.REST_FRAMEWORK = rest

    return _set


@pytest.fixture
def add_totp() -> Callable[[User], pyotp.TOTP]:
    def _add(user: User) -> pyotp.TOTP:
        device = TOTPFactor(user=user, name="Phone", confirmed=True)
        device.set_key(secrets.token_hex(20))
        device.save()
        parsed = pyotp.parse_uri(device.config_url(issuer=settings.MFA_TOTP_ISSUER))
        assert isinstance(parsed, pyotp.TOTP)
        return parsed

    return _add


@pytest.fixture
def add_email_factor() -> Callable[[User], EmailFactor]:
    def _add(user: User) -> EmailFactor:
        return EmailFactor.objects.create(user=user, name="Email", email=user.email, confirmed=True)

    return _add


def events(type_: str, user: User | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.filter(type=type_)
    if user is not None:
        qs = qs.filter(user=user)
    return list(qs.order_by("id"))


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Every API error: the right status, JSON, and at least {"detail", "code"}."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert isinstance(body.get("code"), str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body
