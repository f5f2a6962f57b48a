from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from django.contrib.sessions.backends.cache import SessionStore
from django.test import RequestFactory

from accounts.models import User
from risk import services
from risk.geo import locate

FIREFOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@cache
def _ips_in(country: str) -> tuple[str, ...]:
    """Public addresses the embedded geoip2fast data places in `country` (asked, not hard-coded)."""
    found: list[str] = []
    for a in range(1, 224):
        if a in (10, 127):
            continue
        for b in range(0, 256, 3):
            ip = f"{a}.{b}.{(a * 7 + b) % 250 + 1}.{(a + b) % 250 + 2}"
            place = locate(ip)
            if place.country == country and not place.is_local:
                found.append(ip)
                if len(found) >= 3:
                    return tuple(found)
    raise AssertionError(f"no IP for {country} in the embedded data")


@pytest.fixture
def ip_in() -> Callable[..., str]:
    def _ip(country: str, n: int = 0) -> str:
        return _ips_in(country)[n]

    return _ip


@pytest.fixture
def app_login() -> Callable[..., services.RiskDecision]:
    """A mobile-app login through the risk service (the API front end's calls), device id given."""

    def _login(
        user: User,
        *,
        ip: str,
        device_id: str | None = "app-device-0001",
        ua: str = "BankPortalApp/1.0",
        finish: bool = True,
    ) -> services.RiskDecision:
        request = RequestFactory().post("/api/v1/auth/login", REMOTE_ADDR=ip, HTTP_USER_AGENT=ua)
        request.session = SessionStore()
        decision = services.evaluate_login(request=request, user=user, channel="api", device_id=device_id)
        if finish and decision.action != "deny":
            services.login_succeeded(request=request, user=user, decision=decision, amr=["pwd"])
        return decision

    return _login


def audit_types(user: User) -> list[str]:
    from audit.models import AuditEvent

    return list(AuditEvent.objects.filter(user=user).order_by("id").values_list("type", flat=True))


def risk_alert_emails(outbox: list[Any]) -> list[Any]:
    return [m for m in outbox if "New sign-in" in m.subject]
