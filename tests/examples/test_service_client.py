"""examples/service_client.py against the live portal: Client Credentials, the payments API, token caching."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import requests
from django.core.management import call_command

from accounts.models import User
from examples.service_client import RENEW_BEFORE_EXPIRY_SECONDS, PaymentsReader, main
from payments import services as payments
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _service_client(owner: User, scopes: str) -> tuple[str, str]:
    out = StringIO()
    call_command(
        "create_oauth_client",
        "--name",
        "payments-reader",
        "--kind",
        "confidential",
        "--grant",
        "client-credentials",
        "--scopes",
        scopes,
        "--user",
        owner.email,
        stdout=out,
    )
    printed = dict(re.findall(r"^(client_id|client_secret)=(\S+)$", out.getvalue(), re.MULTILINE))
    return printed["client_id"], printed["client_secret"]


@pytest.fixture
def issuer(live_server: Any, settings: Any) -> str:
    settings.PUBLIC_BASE_URL = live_server.url
    return str(live_server.url)


@pytest.fixture
def customer_with_payment() -> User:
    customer = cast(User, UserFactory(full_name="Paula Payer"))
    account = payments.account_open(owner=customer, currency="EUR", name="Current", opening_balance=Decimal("500.00"))
    payments.payment_create(
        user=customer,
        from_account=str(account.id),
        amount="12.34",
        currency="EUR",
        to_iban="DE89370400440532013000",
        payee_name="Landlord",
        reference="Rent December",
    )
    return customer


def test_reads_payments_and_keeps_its_token_until_60_seconds_before_expiry(
    issuer: str, customer_with_payment: User, time_machine: Any
) -> None:
    client_id, secret = _service_client(customer_with_payment, "read:payments")
    session = requests.Session()
    calls: list[str] = []
    session.hooks["response"].append(lambda r, *args, **kwargs: calls.append(urlsplit(r.url).path))
    reader = PaymentsReader(issuer=issuer, client_id=client_id, client_secret=secret, session=session)
    token_path = urlsplit(reader.client.token_endpoint).path

    listed = reader.payments()
    assert [(p["amount"], p["reference"]) for p in listed] == [("12.34", "Rent December")]
    assert calls.count(token_path) == 1
    token = reader.auth.token
    assert token is not None and token.expires_at is not None

    reader.payments()
    assert calls.count(token_path) == 1, "the cached token is reused"

    time_machine.move_to(token.expires_at - timedelta(seconds=RENEW_BEFORE_EXPIRY_SECONDS + 5), tick=False)
    reader.payments()
    assert calls.count(token_path) == 1, "still more than 60 s left: no new token"

    time_machine.move_to(token.expires_at - timedelta(seconds=RENEW_BEFORE_EXPIRY_SECONDS - 5), tick=False)
    assert len(reader.payments()) == 1
    assert calls.count(token_path) == 2, "within 60 s of expiry: a fresh token first"
    assert reader.auth.token is not token


def test_script_without_the_scope_is_refused(
    issuer: str, customer_with_payment: User, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id, secret = _service_client(customer_with_payment, "read:accounts")
    monkeypatch.setenv("SERVICE_CLIENT_ID", client_id)
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", secret)
    # Asking for a scope the client was not given: the token endpoint refuses.
    assert main(["--issuer", issuer, "--env-file", "/nonexistent"]) == 1
    assert "invalid_scope" in capsys.readouterr().err
    # A token for another scope: the payments API refuses it.
    assert main(["--issuer", issuer, "--env-file", "/nonexistent", "--scope", "read:accounts"]) == 1
    err = capsys.readouterr().err
    assert "403" in err and "insufficient_scope" in err, err


def test_script_prints_the_payments(
    issuer: str, customer_with_payment: User, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id, secret = _service_client(customer_with_payment, "read:payments")
    monkeypatch.setenv("SERVICE_CLIENT_ID", client_id)
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", secret)
    assert main(["--issuer", issuer, "--env-file", "/nonexistent"]) == 0
    assert '"reference": "Rent December"' in capsys.readouterr().out


def test_script_without_credentials_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SERVICE_CLIENT_ID", raising=False)
    monkeypatch.delenv("SERVICE_CLIENT_SECRET", raising=False)
    assert main(["--env-file", "/nonexistent"]) == 2
    assert "SERVICE_CLIENT_ID" in capsys.readouterr().out
