from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Beneficiary, Payment
from tests.payments.conftest import EXTERNAL_IBAN


def submission(client: Client) -> str:
    page = client.get("/payments/new/")
    assert page.status_code == 200
    found = re.search(r'name="submission" value="([^"]+)"', page.content.decode())
    assert found
    return found.group(1)


def form(account: BankAccount, token: str, amount: str = "25.00", **extra: str) -> dict[str, str]:
    return {
        "from_account": str(account.id),
        "beneficiary": "",
        "payee_name": "Jane Doe",
        "to_iban": "DE89 3704 0044 0532 0130 00",
        "amount": amount,
        "reference": "Rent",
        "submission": token,
        **extra,
    }


def test_dashboard_shows_recent_payments_and_link(
    client: Client, login: Callable[..., Any], customer: User, account: BankAccount
) -> None:
    services.payment_create(
        user=customer, from_account=account.id, amount="12.34", currency="EUR", to_iban=EXTERNAL_IBAN
    )
    login(client, customer)
    page = client.get("/").content.decode()
    assert "Recent payments" in page and "12.34 EUR" in page and 'href="/payments/new/"' in page
    assert 'href="/payments/"' in page  # the nav link


def test_new_payment_completes_and_form_cannot_be_submitted_twice(
    client: Client, login: Callable[..., Any], customer: User, account: BankAccount
) -> None:
    login(client, customer)
    token = submission(client)
    first = client.post("/payments/new/", form(account, token))
    assert first.status_code == 302
    payment = Payment.objects.get()
    assert first["Location"] == f"/payments/{payment.id}/"
    assert payment.status == "completed" and payment.amount == Decimal("25.00") and payment.reference == "Rent"
    again = client.post("/payments/new/", form(account, token))
    assert again.status_code == 302 and again["Location"] == f"/payments/{payment.id}/"
    assert Payment.objects.count() == 1
    changed = client.post("/payments/new/", form(account, token, amount="26.00"))
    assert changed.status_code == 200
    assert "already used" in changed.content.decode()
    assert Payment.objects.count() == 1
    detail = client.get(f"/payments/{payment.id}/").content.decode()
    assert "25.00 EUR" in detail and "Jane Doe" in detail


def test_forged_or_foreign_submission_token_is_refused(
    client: Client,
    login: Callable[..., Any],
    customer: User,
    account: BankAccount,
    other_customer: User,
    other_account: BankAccount,
) -> None:
    other = Client()
    login(other, other_customer)
    foreign = submission(other)
    login(client, customer)
    for token in ("forged", foreign):
        response = client.post("/payments/new/", form(account, token))
        assert response.status_code == 200
        assert "expired" in response.content.decode()
    assert not Payment.objects.exists()


def test_bad_amounts_are_form_errors(
    client: Client, login: Callable[..., Any], customer: User, account: BankAccount
) -> None:
    login(client, customer)
    for bad in ("-1", "0", "1.001", "1e3", "NaN", "1" * 30):
        response = client.post("/payments/new/", form(account, submission(client), amount=bad))
        assert response.status_code == 200
        assert 'class="errorlist"' in response.content.decode()
    assert not Payment.objects.exists()


def test_large_payment_goes_to_confirmation_page_and_email_code_confirms(
    client: Client,
    login: Callable[..., Any],
    customer: User,
    account: BankAccount,
    last_email_code: Callable[[], tuple[str, str]],
) -> None:
    from mfa.models import EmailFactor

    login(client, customer)
    EmailFactor.objects.create(user=customer, name="email", email=customer.email, confirmed=True)
    response = client.post("/payments/new/", form(account, submission(client), amount="15000.00"))
    payment = Payment.objects.get()
    assert payment.status == "pending_step_up"
    assert response["Location"] == f"/payments/{payment.id}/confirm/"
    page = client.get(f"/payments/{payment.id}/confirm/").content.decode()
    assert "15000.00 EUR" in page and "Jane Doe" in page and "DE89 3704 0044 0532 0130 00" in page
    assert "Send code by email" in page
    sent = client.post(f"/payments/{payment.id}/confirm/", {"action": "send", "method": "email"})
    assert sent.status_code == 302
    code, text = last_email_code()
    assert "15000.00 EUR" in text and "Jane Doe" in text
    wrong = client.post(f"/payments/{payment.id}/confirm/", {"action": "confirm", "method": "email", "code": "000000"})
    assert wrong.status_code == 200 and "2 attempts left" in wrong.content.decode()
    ok = client.post(f"/payments/{payment.id}/confirm/", {"action": "confirm", "method": "email", "code": code})
    assert ok.status_code == 302 and ok["Location"] == f"/payments/{payment.id}/"
    payment.refresh_from_db()
    assert payment.status == "completed"
    # the confirmation page of a completed payment sends the user to its detail
    assert client.get(f"/payments/{payment.id}/confirm/")["Location"] == f"/payments/{payment.id}/"


def test_statement_is_paginated_ledger(
    client: Client, login: Callable[..., Any], customer: User, account: BankAccount
) -> None:
    for _ in range(30):
        services.payment_create(
            user=customer, from_account=account.id, amount="1.00", currency="EUR", to_iban=EXTERNAL_IBAN
        )
    login(client, customer)
    first = client.get(f"/payments/accounts/{account.id}/statement/").content.decode()
    assert "Page 1 of 2" in first and "Opening balance" not in first and "49970.00" in first
    second = client.get(f"/payments/accounts/{account.id}/statement/?page=2").content.decode()
    assert "Opening balance" in second and "50000.00" in second


def test_beneficiary_add_needs_recent_auth_emails_and_audits(
    client: Client,
    login: Callable[..., Any],
    customer: User,
    run_outbox: Callable[[], int],
    time_machine: Any,
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    login(client, customer)
    response = client.post("/payments/beneficiaries/add/", {"name": "Jane Doe", "iban": "DE89 3704 0044 0532 0130 00"})
    assert response.status_code == 302 and response["Location"] == "/payments/beneficiaries/"
    beneficiary = Beneficiary.objects.get()
    assert beneficiary.iban == EXTERNAL_IBAN and beneficiary.owner == customer
    event = AuditEvent.objects.get(type="beneficiary.added")
    assert event.user == customer and event.details["beneficiary"] == str(beneficiary.id)
    run_outbox()
    assert any("beneficiary" in m.subject.lower() and "Jane Doe" in m.body for m in mail.outbox)

    bad = client.post("/payments/beneficiaries/add/", {"name": "X", "iban": "DE00 3704 0044 0532 0130 00"})
    assert bad.status_code == 200 and "not valid" in bad.content.decode()

    time_machine.shift(timedelta(minutes=10))
    stale = client.post("/payments/beneficiaries/add/", {"name": "Mallory", "iban": "GB33BUKB20201555555555"})
    assert stale.status_code == 302 and stale["Location"].startswith("/accounts/reauth/")
    assert Beneficiary.objects.count() == 1


def test_beneficiary_service_refuses_without_recent_auth(rf: Any, customer: User) -> None:
    from django.contrib.sessions.backends.cache import SessionStore

    from accounts.authn import ReauthRequired

    request = rf.post("/")
    request.user = customer
    request.session = SessionStore()
    request.session["auth_time"] = (timezone.now() - timedelta(hours=1)).timestamp()
    with pytest.raises(ReauthRequired):
        services.beneficiary_add(request=request, user=customer, name="Jane", iban=EXTERNAL_IBAN)
    assert not Beneficiary.objects.exists()


@pytest.mark.parametrize("path", ["/payments/", "/payments/new/", "/payments/beneficiaries/"])
def test_pages_need_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_passkey_confirms_on_the_web(
    client: Client, login: Callable[..., Any], customer: User, account: BankAccount
) -> None:
    from django.conf import settings

    from mfa.models import WebAuthnCredential
    from tests.mfa.authenticator import SoftAuthenticator, b64u

    login(client, customer)
    soft = SoftAuthenticator(rp_id=settings.WEBAUTHN_RP_ID, origin=settings.WEBAUTHN_ORIGIN)
    WebAuthnCredential.objects.create(
        user=customer,
        name="laptop",
        confirmed=True,
        credential_id=b64u(soft.credential_id),
        public_key=soft._cose_public_key(),
    )
    client.post("/payments/new/", form(account, submission(client), amount="12000.00"))
    payment = Payment.objects.get()
    page = client.get(f"/payments/{payment.id}/confirm/").content.decode()
    assert 'data-webauthn="assert"' in page and "js/webauthn.js" in page and "<script>" not in page
    options = client.post(f"/payments/{payment.id}/confirm/passkey/begin/").json()
    finish = client.post(
        f"/payments/{payment.id}/confirm/passkey/finish/",
        {"credential": soft.get(options)},
        content_type="application/json",
    )
    assert finish.status_code == 200 and finish.json()["redirect"] == f"/payments/{payment.id}/"
    payment.refresh_from_db()
    assert payment.status == "completed" and payment.step_up_method == "webauthn"
