"""The device cookie: a long-lived random id, signed, HttpOnly, Secure, SameSite; stored hashed."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.crypto import keyed_hash

COOKIE_SALT = "risk.device-id"
_NEW_ID_ATTR = "_risk_new_device_id"
_MAX_ID_LENGTH = 128


def device_id_hash(device_id: str) -> str:
    return keyed_hash(device_id, purpose="device-id")


def valid_device_id(value: str | None) -> str | None:
    """A device id as a client sent it (cookie or API), or None when absent or absurd."""
    if not value:
        return None
    value = value.strip()
    if not (8 <= len(value) <= _MAX_ID_LENGTH) or not value.isprintable():
        return None
    return value


def device_id_from_cookie(request: HttpRequest) -> str | None:
    pending = getattr(request, _NEW_ID_ATTR, None)
    if pending:
        return str(pending)
    raw = request.get_signed_cookie(settings.RISK_DEVICE_COOKIE_NAME, default=None, salt=COOKIE_SALT)
    return valid_device_id(raw)


def web_device_id(request: HttpRequest) -> str:
    """This browser's device id; a fresh one (set on the response by RiskMiddleware) when it has none."""
    existing = device_id_from_cookie(request)
    if existing:
        return existing
    new_id = secrets.token_urlsafe(32)
    setattr(request, _NEW_ID_ATTR, new_id)
    return new_id


def attach_device_cookie(request: HttpRequest, response: HttpResponse) -> None:
    new_id = getattr(request, _NEW_ID_ATTR, None)
    if not new_id:
        return
    response.set_signed_cookie(
        settings.RISK_DEVICE_COOKIE_NAME,
        new_id,
        salt=COOKIE_SALT,
        max_age=settings.RISK_DEVICE_COOKIE_AGE_DAYS * 24 * 60 * 60,
        secure=settings.RISK_DEVICE_COOKIE_SECURE,
        httponly=True,
        samesite=settings.RISK_DEVICE_COOKIE_SAMESITE,
    )
