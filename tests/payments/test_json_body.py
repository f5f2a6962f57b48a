"""The web's passkey confirmation of a payment parses JSON through core.http.json_body: 400, never 500."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from payments import services
from payments.models import BankAccount, Payment
from tests.audit.helpers import web_login
from tests.mfa.authenticator import enrolled_passkey
from tests.payments.conftest import EXTERNAL_IBAN


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("[" * 100_000 + "]" * 100_000, "json_too_deep"),
        ("{not json", "invalid_json"),
        ('"just a string"', "invalid_json"),
    ],
)
def test_payment_passkey_finish_refuses_bad_json(
    client: Client, customer: User, account: BankAccount, body: str, code: str
) -> None:
    enrolled_passkey(customer)
    services.payment_create(
        user=customer, from_account=account.id, amount="12000.00", currency="EUR", to_iban=EXTERNAL_IBAN
    )
    payment = Payment.objects.get()
    assert payment.status == "pending_step_up"
    web_login(client, customer, amr=["pwd", "hwk"])
    response = client.post(
        f"/payments/{payment.id}/confirm/passkey/finish/", data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == code
    payment.refresh_from_db()
    assert payment.status == "pending_step_up"
