from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Payment
from tests.payments.conftest import EXTERNAL_IBAN, api_client_for


def body(account: BankAccount, amount: str = "10.00") -> dict[str, str]:
    return {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": amount, "currency": "EUR"}


def test_idempotency_key_required(api: APIClient, account: BankAccount) -> None:
    response = api.post("/api/v1/payments", body(account), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"
    assert not Payment.objects.exists()


def test_same_key_same_body_replays_first_response(api: APIClient, account: BankAccount) -> None:
    first = api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1
    account.refresh_from_db()
    assert account.balance == Decimal("49990.00")
    assert AuditEvent.objects.filter(type="payment.completed").count() == 1


def test_same_key_other_body_is_409(api: APIClient, account: BankAccount) -> None:
    assert api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="k-2").status_code == 201
    conflict = api.post("/api/v1/payments", body(account, "11.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"
    assert Payment.objects.count() == 1


def test_keys_are_per_customer(
    api: APIClient, account: BankAccount, other_customer: User, other_account: BankAccount
) -> None:
    assert api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    other = api_client_for(other_customer)
    response = other.post("/api/v1/payments", body(other_account), format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert response.status_code == 201
    assert Payment.objects.count() == 2


def test_a_refusal_is_not_remembered(api: APIClient, customer: User) -> None:
    small = services.account_open(owner=customer, currency="EUR", opening_balance="5.00")
    refused = api.post("/api/v1/payments", body(small), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert refused.status_code == 400
    services.account_open(owner=customer, currency="EUR")  # unrelated, keeps the ledger honest
    from payments.ledger import posting_create
    from payments.models import Posting

    funding = services.internal_account(kind=BankAccount.Kind.FUNDING, currency="EUR")
    posting_create(
        kind=Posting.Kind.OPENING, description="top up", lines=[(funding, Decimal("-10")), (small, Decimal("10"))]
    )
    assert api.post("/api/v1/payments", body(small), format="json", HTTP_IDEMPOTENCY_KEY="k-3").status_code == 201


def test_other_customers_objects_are_404_in_the_api(
    api: APIClient, customer: User, account: BankAccount, other_customer: User, other_account: BankAccount
) -> None:
    mine = api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="own").json()["id"]
    other = api_client_for(other_customer)
    assert other.get(f"/api/v1/payments/{mine}").status_code == 404
    assert other.get(f"/api/v1/payments/{mine}").json()["code"] == "not_found"
    assert other.post(f"/api/v1/payments/{mine}/confirm", {"code": "123456"}, format="json").status_code == 404
    assert (
        other.post(f"/api/v1/payments/{mine}/step-up/challenge", {"method": "email"}, format="json").status_code == 404
    )
    assert other.get("/api/v1/payments").json() == []
    assert [a["id"] for a in other.get("/api/v1/accounts").json()] == [str(other_account.id)]
    # paying from someone else's account is a 404 too, and moves nothing
    stolen = other.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="steal")
    assert stolen.status_code == 404
    assert api.get("/api/v1/payments/not-a-uuid").status_code == 404
    account.refresh_from_db()
    assert account.balance == Decimal("49990.00")


def test_accounts_and_payments_listing(api: APIClient, account: BankAccount) -> None:
    accounts = api.get("/api/v1/accounts").json()
    assert accounts == [
        {"id": str(account.id), "iban": account.iban, "name": "Current", "currency": "EUR", "balance": "50000.00"}
    ]
    api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="l-1")
    listed = api.get("/api/v1/payments").json()
    assert len(listed) == 1 and listed[0]["amount"] == "10.00" and listed[0]["status"] == "completed"


def test_unauthenticated_api_is_refused(account: BankAccount) -> None:
    client = APIClient()
    assert client.get("/api/v1/accounts").status_code in (401, 403)
    assert client.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="x").status_code in (
        401,
        403,
    )


def test_other_customers_objects_are_404_on_the_web(
    client: Client, login: object, account: BankAccount, other_customer: User, customer: User
) -> None:
    payment = services.payment_create(
        user=customer, from_account=account.id, amount="5.00", currency="EUR", to_iban=EXTERNAL_IBAN
    ).payment
    login(client, other_customer)  # type: ignore[operator]
    assert client.get(f"/payments/{payment.id}/").status_code == 404
    assert client.get(f"/payments/{payment.id}/confirm/").status_code == 404
    assert client.get(f"/payments/accounts/{account.id}/statement/").status_code == 404


def test_keys_are_forgotten_after_a_day(api: APIClient, account: BankAccount, time_machine: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from payments.tasks import payments_expire_pending

    time_machine.move_to(timezone.now(), tick=False)
    assert api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    time_machine.shift(timedelta(hours=23))
    payments_expire_pending()
    api = api_client_for(account.owner)  # type: ignore[arg-type]
    assert api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    assert Payment.objects.count() == 1
    time_machine.shift(timedelta(hours=2))
    payments_expire_pending()
    api = api_client_for(account.owner)  # type: ignore[arg-type]
    assert api.post("/api/v1/payments", body(account), format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    assert Payment.objects.count() == 2
