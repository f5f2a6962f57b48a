"""Who is on the other end of a request: client IP and user-agent family."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's IP.

    `REMOTE_ADDR` unless `TRUSTED_PROXY_COUNT` proxies sit in front of us; then the
    address that the outermost trusted proxy saw, counted from the right of
    X-Forwarded-For, so that a client cannot choose its own address by sending the header.
    """
    cached = getattr(request, "_client_ip", None)
    if cached:
        return str(cached)
    remote = _valid_ip(request.META.get("REMOTE_ADDR", "")) or "0.0.0.0"  # noqa: S104 (a placeholder address: nothing binds to it)  # nosec B104
    ip = remote
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [p for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= proxies:
            ip = _valid_ip(forwarded[-proxies]) or remote
    request._client_ip = ip  # type: ignore[attr-defined]
    return ip


def is_local_ip(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return True
    return addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_unspecified


@lru_cache(maxsize=2048)
def _parse_user_agent(user_agent: str) -> tuple[str, str]:
    from ua_parser import parse

    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else "Unknown browser"
    os_family = result.os.family if result.os else ""
    return browser or "Unknown browser", os_family or ""


def user_agent_family(request: HttpRequest) -> str:
    browser, _os = _parse_user_agent(request.META.get("HTTP_USER_AGENT", "")[:512])
    return browser


def device_name(user_agent: str) -> str:
    """A human name for a device, e.g. "Firefox on Windows"."""
    browser, os_family = _parse_user_agent(user_agent[:512])
    if browser == "Other":
        browser = "Unknown browser"
    if os_family and os_family != "Other":
        return f"{browser} on {os_family}"
    return browser


def safe_next(request: HttpRequest, default: str = "") -> str:
    """The `next` parameter when it is a path on this site; else `default` or the home page."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if (
        candidate
        and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        and candidate.startswith("/")
        and not candidate.startswith("//")
    ):
        return candidate
    return default or reverse(settings.LOGIN_REDIRECT_URL)
