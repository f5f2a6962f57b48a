from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from payments.models import BankAccount, Payment
from tests.mfa.authenticator import SoftAuthenticator, b64u
from tests.payments.conftest import EXTERNAL_IBAN


@pytest.fixture
def authenticator(customer: User) -> SoftAuthenticator:
    from mfa.models import WebAuthnCredential

    soft = SoftAuthenticator(rp_id=settings.WEBAUTHN_RP_ID, origin=settings.WEBAUTHN_ORIGIN)
    WebAuthnCredential.objects.create(
        user=customer,
        name="laptop",
        confirmed=True,
        credential_id=b64u(soft.credential_id),
        public_key=soft._cose_public_key(),
    )
    return soft


def create(api: APIClient, account: BankAccount, key: str) -> dict[str, Any]:
    response = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": "20000.00", "currency": "EUR"},
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert response.status_code == 202, response.content
    return dict(response.json())


def test_passkey_confirms_a_payment(api: APIClient, account: BankAccount, authenticator: SoftAuthenticator) -> None:
    payment = create(api, account, "wa-1")
    assert payment["step_up"]["methods"] == ["webauthn"]
    begun = api.post(f"/api/v1/payments/{payment['id']}/step-up/challenge", {"method": "webauthn"})
    assert begun.status_code == 202
    assertion = authenticator.get(begun.json()["options"])
    done = api.post(
        f"/api/v1/payments/{payment['id']}/confirm", {"method": "webauthn", "credential": assertion}, format="json"
    )
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "completed"
    account.refresh_from_db()
    assert account.balance == Decimal("30000.00")


def test_passkey_assertion_for_a_changed_payment_is_refused(
    api: APIClient, account: BankAccount, authenticator: SoftAuthenticator
) -> None:
    payment = create(api, account, "wa-2")
    begun = api.post(f"/api/v1/payments/{payment['id']}/step-up/challenge", {"method": "webauthn"})
    assertion = authenticator.get(begun.json()["options"])
    Payment.objects.filter(id=payment["id"]).update(payee_iban="GB33BUKB20201555555555")
    refused = api.post(
        f"/api/v1/payments/{payment['id']}/confirm", {"method": "webauthn", "credential": assertion}, format="json"
    )
    assert refused.status_code == 410 and refused.json()["code"] == "payment_changed"
    assert Payment.objects.get(id=payment["id"]).status == "refused"


def test_passkey_challenge_of_one_payment_does_not_confirm_another(
    api: APIClient, account: BankAccount, authenticator: SoftAuthenticator
) -> None:
    first = create(api, account, "wa-3")
    second = create(api, account, "wa-4")
    begun = api.post(f"/api/v1/payments/{first['id']}/step-up/challenge", {"method": "webauthn"})
    assertion = authenticator.get(begun.json()["options"])
    wrong = api.post(
        f"/api/v1/payments/{second['id']}/confirm", {"method": "webauthn", "credential": assertion}, format="json"
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    assert Payment.objects.get(id=second["id"]).status == "pending_step_up"
