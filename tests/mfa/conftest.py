from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pyotp
import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from mfa.models import EmailFactor, SMSFactor, TOTPFactor
from tests.mfa.authenticator import SoftAuthenticator


def totp_for(device: TOTPFactor) -> pyotp.TOTP:
    """pyotp built from the otpauth:// URI the user would scan: an independent implementation."""
    parsed = pyotp.parse_uri(device.config_url(issuer=settings.MFA_TOTP_ISSUER))
    assert isinstance(parsed, pyotp.TOTP)
    return parsed


def totp_from_page(html: str) -> pyotp.TOTP:
    match = re.search(r'href="(otpauth://[^"]+)"', html)
    assert match, "the enrolment page shows the otpauth URI"
    parsed = pyotp.parse_uri(unquote(match.group(1).replace("&amp;", "&")))
    assert isinstance(parsed, pyotp.TOTP)
    return parsed


@pytest.fixture
def add_totp() -> Callable[..., tuple[TOTPFactor, pyotp.TOTP]]:
    def _add(user: User, name: str = "Phone") -> tuple[TOTPFactor, pyotp.TOTP]:
        device = TOTPFactor(user=user, name=name, confirmed=True)
        device.set_key(secrets.token_hex(20))
        device.save()
        return device, totp_for(device)

    return _add


@pytest.fixture
def add_sms() -> Callable[..., SMSFactor]:
    def _add(user: User, phone: str = "+447700900123") -> SMSFactor:
        return SMSFactor.objects.create(user=user, name="Phone", phone=phone, confirmed=True)

    return _add


@pytest.fixture
def add_email() -> Callable[..., EmailFactor]:
    def _add(user: User) -> EmailFactor:
        return EmailFactor.objects.create(user=user, name="Email", email=user.email, confirmed=True)

    return _add


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator(rp_id=settings.WEBAUTHN_RP_ID, origin=settings.WEBAUTHN_ORIGIN)


@pytest.fixture
def logged_in(client: Client, user: User, login: Callable[..., Any]) -> Client:
    """A customer without factors, logged in with the password (so recently authenticated)."""
    response = login(client, user)
    assert response.status_code == 302
    return client


def events(type_: str, user: User | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.filter(type=type_)
    if user is not None:
        qs = qs.filter(user=user)
    return list(qs.order_by("id"))
