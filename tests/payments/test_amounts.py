from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Payment
from tests.payments.conftest import EXTERNAL_IBAN

BAD_AMOUNTS = [
    "-1",
    "0",
    "1.001",
    "1e3",
    "NaN",
    12.5,
    "1" * 30,
    "Infinity",
    "1,000",
    "1_000",
    "",
    None,
    True,
    [1],
    "0.00",
]


@pytest.mark.parametrize("raw", BAD_AMOUNTS)
def test_parse_amount_refuses(raw: object) -> None:
    with pytest.raises(services.PaymentError) as exc:
        services.parse_amount(raw)
    assert exc.value.code == "invalid_amount"


@pytest.mark.parametrize(("raw", "expected"), [("10", "10.00"), ("10.5", "10.50"), ("0.01", "0.01"), (7, "7.00")])
def test_parse_amount_accepts(raw: object, expected: str) -> None:
    assert services.parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["-1", "0", "1.001", "1e3", "NaN", 12.5, 1000.0, "1" * 30])
def test_api_refuses_bad_amounts_with_400(api: APIClient, account: BankAccount, raw: object) -> None:
    response = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": raw, "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"bad-{raw!r}",
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_amount"
    assert "amount" in response.json()["errors"]
    assert not Payment.objects.exists()


def test_api_refuses_nan_literal_and_garbage_json(api: APIClient, account: BankAccount) -> None:
    for raw_body in (
        f'{{"from_account": "{account.id}", "to_iban": "{EXTERNAL_IBAN}", "amount": NaN, "currency": "EUR"}}',
        "{not json",
        "[1, 2]",
    ):
        response = api.post("/api/v1/payments", raw_body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == 400, raw_body
        assert "detail" in response.json()


def test_insufficient_funds_refused_and_audited(api: APIClient, customer: User) -> None:
    poor = services.account_open(owner=customer, currency="EUR", opening_balance="10.00")
    response = api.post(
        "/api/v1/payments",
        {"from_account": str(poor.id), "to_iban": EXTERNAL_IBAN, "amount": "10.01", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="poor-1",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "insufficient_funds"
    event = AuditEvent.objects.get(type="payment.refused")
    assert event.outcome == "denied" and event.reason == "insufficient_funds"
    assert not Payment.objects.exists()


def test_currency_must_match(api: APIClient, account: BankAccount) -> None:
    response = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": "1.00", "currency": "USD"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="cur-1",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "currency_mismatch"


def test_invalid_iban_check_digits(api: APIClient, account: BankAccount) -> None:
    response = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": "DE88370400440532013000", "amount": "1.00", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="iban-1",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_iban"


def test_daily_limit(api: APIClient, account: BankAccount, settings: object, totp_factor: object) -> None:
    settings.PAYMENT_DAILY_LIMIT = Decimal("100.00")  # type: ignore[attr-defined]
    body = {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "currency": "EUR"}
    ok = api.post("/api/v1/payments", {**body, "amount": "60.00"}, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    assert ok.status_code == 201
    over = api.post("/api/v1/payments", {**body, "amount": "40.01"}, format="json", HTTP_IDEMPOTENCY_KEY="d2")
    assert over.status_code == 400
    assert over.json()["code"] == "daily_limit"
    exact = api.post("/api/v1/payments", {**body, "amount": "40.00"}, format="json", HTTP_IDEMPOTENCY_KEY="d3")
    assert exact.status_code == 201
