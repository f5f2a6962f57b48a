from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from django.conf import settings
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from payments.models import BankAccount, Beneficiary, Payment
from tests.payments.conftest import EXTERNAL_IBAN, api_client_for

TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"


def test_fresh_login_adds_beneficiary_audited_and_emailed(
    api: APIClient, customer: User, run_outbox: Callable[[], int]
) -> None:
    response = api.post("/api/v1/beneficiaries", {"name": "Jane Doe", "iban": "DE89 3704 0044 0532 0130 00"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Jane Doe" and body["iban"] == EXTERNAL_IBAN and set(body) >= {"id", "name", "iban"}
    event = AuditEvent.objects.get(type="beneficiary.added")
    assert event.user == customer and event.details["channel"] == "api"
    run_outbox()
    assert any("Jane Doe" in m.body for m in mail.outbox)
    assert api.get("/api/v1/beneficiaries").json()[0]["id"] == body["id"]
    duplicate = api.post("/api/v1/beneficiaries", {"name": "Jane", "iban": EXTERNAL_IBAN})
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "duplicate_beneficiary"


def test_bad_iban_is_400(api: APIClient) -> None:
    for iban in ("DE88370400440532013000", "XX00", "", "DE89 3704 0044 0532 0130 0"):
        response = api.post("/api/v1/beneficiaries", {"name": "Jane", "iban": iban})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_iban"
        assert "iban" in response.json()["errors"]
    assert not Beneficiary.objects.exists()


def test_old_login_needs_a_code_bound_to_the_beneficiary(
    customer: User, totp_factor: Any, totp_now: Callable[[], str], time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    api = api_client_for(customer)
    time_machine.shift(timedelta(minutes=6))
    stale = api.post("/api/v1/beneficiaries", {"name": "Jane Doe", "iban": EXTERNAL_IBAN})
    assert stale.status_code == 403
    assert stale.json()["code"] == "reauth_required"
    wrong = api.post(
        "/api/v1/beneficiaries", {"name": "Jane Doe", "iban": EXTERNAL_IBAN, "code": "000000", "method": "totp"}
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    ok = api.post(
        "/api/v1/beneficiaries", {"name": "Jane Doe", "iban": EXTERNAL_IBAN, "code": totp_now(), "method": "totp"}
    )
    assert ok.status_code == 201, ok.content
    assert Beneficiary.objects.count() == 1


def test_email_code_for_one_beneficiary_does_not_add_another(
    customer: User,
    email_factor: Any,
    last_email_code: Callable[[], tuple[str, str]],
    time_machine: Any,
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    api = api_client_for(customer)
    time_machine.shift(timedelta(minutes=6))
    sent = api.post("/api/v1/beneficiaries/challenge", {"method": "email", "name": "Jane Doe", "iban": EXTERNAL_IBAN})
    assert sent.status_code == 202, sent.content
    code, text = last_email_code()
    assert "Jane Doe" in text and EXTERNAL_IBAN in text
    swapped = api.post(
        "/api/v1/beneficiaries",
        {"name": "Mallory", "iban": "GB33BUKB20201555555555", "code": code, "method": "email"},
    )
    assert swapped.status_code == 400
    assert not Beneficiary.objects.exists()


def test_others_beneficiary_cannot_be_paid(
    api: APIClient, account: BankAccount, other_customer: User, totp_factor: Any
) -> None:
    theirs = Beneficiary.objects.create(owner=other_customer, name="Theirs", iban=EXTERNAL_IBAN)
    response = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "beneficiary": str(theirs.id), "amount": "5.00", "currency": "EUR"},
        HTTP_IDEMPOTENCY_KEY="b-theirs",
    )
    assert response.status_code == 404
    assert api.get("/api/v1/beneficiaries").json() == []


@pytest.fixture
def twilio() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.POST,
            TWILIO_URL,
            json={"sid": "SM" + "1" * 32, "status": "queued", "account_sid": settings.TWILIO_ACCOUNT_SID},
            status=201,
        )
        yield mock


def test_sms_step_up_states_amount_and_payee(
    api: APIClient, customer: User, account: BankAccount, twilio: Any, run_outbox: Callable[[], int]
) -> None:
    from mfa.models import SMSFactor

    SMSFactor.objects.create(user=customer, name="phone", phone="+447700900123", confirmed=True)
    created = api.post(
        "/api/v1/payments",
        {
            "from_account": str(account.id),
            "to_iban": EXTERNAL_IBAN,
            "payee_name": "Jane Doe",
            "amount": "15000.00",
            "currency": "EUR",
        },
        HTTP_IDEMPOTENCY_KEY="sms-1",
    ).json()
    assert created["step_up"]["methods"] == ["sms"]
    sent = api.post(f"/api/v1/payments/{created['id']}/step-up/challenge", {"method": "sms"})
    assert sent.status_code == 202 and sent.json()["sent_to"] == "+44•••••123"
    too_soon = api.post(f"/api/v1/payments/{created['id']}/step-up/challenge", {"method": "sms"})
    assert too_soon.status_code == 429 and "Retry-After" in too_soon
    run_outbox()
    [call] = twilio.calls
    text = parse_qs(str(call.request.body))["Body"][0]
    assert "15000.00 EUR" in text and "Jane Doe" in text and EXTERNAL_IBAN in text
    code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    done = api.post(f"/api/v1/payments/{created['id']}/confirm", {"code": code})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert Payment.objects.get().step_up_method == "sms"


def test_passkey_unavailable_without_one(api: APIClient, account: BankAccount, totp_factor: Any) -> None:
    created = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": "15000.00", "currency": "EUR"},
        HTTP_IDEMPOTENCY_KEY="wa-1",
    ).json()
    response = api.post(f"/api/v1/payments/{created['id']}/step-up/challenge", {"method": "webauthn"})
    assert response.status_code == 400
    assert response.json()["code"] == "method_unavailable"
