from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, cast

import pyotp
import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount
from payments.selectors import ledger_inconsistencies
from tests.accounts.factories import UserFactory

TOTP_KEY_HEX = "3132333435363738393031323334353637383930"


@pytest.fixture(autouse=True)
def _ledger_consistent() -> Iterator[None]:
    """After every payments test, every cached balance equals its ledger and the ledger sums to zero."""
    yield
    assert ledger_inconsistencies() == []


@pytest.fixture
def customer() -> User:
    return cast(User, UserFactory(full_name="Alice Customer"))


@pytest.fixture
def account(customer: User) -> BankAccount:
    return services.account_open(owner=customer, currency="EUR", name="Current", opening_balance=Decimal("50000.00"))


@pytest.fixture
def other_customer() -> User:
    return cast(User, UserFactory(full_name="Bob Other"))


@pytest.fixture
def other_account(other_customer: User) -> BankAccount:
    return services.account_open(owner=other_customer, currency="EUR", opening_balance=Decimal("100.00"))


def api_client_for(user: User) -> APIClient:
    """An API client carrying a real bearer access token of a fresh mobile login of the user."""
    from tests.api.helpers import bearer, issue_tokens

    client = APIClient(REMOTE_ADDR="203.0.113.10")
    client.credentials(**bearer(issue_tokens(user)))
    return client


@pytest.fixture
def api(customer: User) -> APIClient:
    return api_client_for(customer)


@pytest.fixture
def email_factor(customer: User) -> Any:
    from mfa.models import EmailFactor

    return EmailFactor.objects.create(user=customer, name="email", email=customer.email, confirmed=True)


@pytest.fixture
def totp_factor(customer: User) -> Any:
    from mfa.models import TOTPFactor

    factor = TOTPFactor(user=customer, name="app", confirmed=True)
    factor.set_key(TOTP_KEY_HEX)
    factor.save()
    return factor


@pytest.fixture
def totp_now() -> Callable[[], str]:
    from base64 import b32encode
    from binascii import unhexlify

    secret = b32encode(unhexlify(TOTP_KEY_HEX)).decode()
    return lambda: pyotp.TOTP(secret).now()


@pytest.fixture
def last_email_code(run_outbox: Callable[[], int]) -> Callable[[], tuple[str, str]]:
    """Delivers the outbox; returns (code, text) of the newest email carrying a 6-digit code."""

    def _get() -> tuple[str, str]:
        run_outbox()
        for message in reversed(mail.outbox):
            body = str(message.body)
            found = re.search(r"\b(\d{6})\b", body)
            if found:
                return found.group(1), body
        raise AssertionError("no code email")

    return _get


@pytest.fixture
def audit_types() -> Callable[..., list[str]]:
    def _types(user: User | None = None, prefix: str = "") -> list[str]:
        rows = AuditEvent.objects.order_by("id")
        if user is not None:
            rows = rows.filter(user=user)
        return [t for t in rows.values_list("type", flat=True) if t.startswith(prefix)]

    return _types


EXTERNAL_IBAN = "DE89370400440532013000"
