"""The web side of issue 16 and issue 13 item 4: trusting a payee, standing orders, "this wasn't
me", the emailed fallback code, and the SCA decision shown on the payment's page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Beneficiary, Payment, StandingOrder
from tests.payments.conftest import EXTERNAL_IBAN


def _submission(client: Client) -> str:
    page = client.get("/payments/new/")
    found = re.search(r'name="submission" value="([^"]+)"', page.content.decode())
    assert found
    return found.group(1)


def test_trust_a_beneficiary_with_a_code_then_pay_it_without_one(
    client: Client,
    login: Callable[..., Any],
    customer: User,
    account: BankAccount,
    last_email_code: Callable[[], tuple[str, str]],
    time_machine: Any,
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    beneficiary = Beneficiary.objects.create(owner=customer, name="Landlord", iban=EXTERNAL_IBAN)
    login(client, customer)
    listing = client.get("/payments/beneficiaries/").content.decode()
    assert f'href="/payments/beneficiaries/{beneficiary.id}/trust/"' in listing
    page = client.get(f"/payments/beneficiaries/{beneficiary.id}/trust/")
    assert page.status_code == 200 and "Trust this beneficiary" in page.content.decode()
    assert client.post(page.request["PATH_INFO"], {"action": "start"}).status_code == 302
    sent = client.post(f"/payments/beneficiaries/{beneficiary.id}/trust/", {"action": "send", "method": "email"})
    assert sent.status_code == 302
    code, text = last_email_code()
    assert "Landlord" in text and EXTERNAL_IBAN in text
    wrong = client.post(
        f"/payments/beneficiaries/{beneficiary.id}/trust/", {"action": "confirm", "method": "email", "code": "000000"}
    )
    assert wrong.status_code == 200 and "not correct" in wrong.content.decode()
    done = client.post(
        f"/payments/beneficiaries/{beneficiary.id}/trust/", {"action": "confirm", "method": "email", "code": code}
    )
    assert done.status_code == 302 and done["Location"] == "/payments/beneficiaries/"
    beneficiary.refresh_from_db()
    assert beneficiary.is_trusted
    assert "Trusted" in client.get("/payments/beneficiaries/").content.decode()

    # a first payment to a payee added today would ask for a code; trusted, it does not
    form = {
        "from_account": str(account.id),
        "beneficiary": str(beneficiary.id),
        "payee_name": "",
        "to_iban": "",
        "amount": "120.00",
        "reference": "Rent",
        "submission": _submission(client),
    }
    paid = client.post("/payments/new/", form)
    payment = Payment.objects.get()
    assert paid.status_code == 302 and paid["Location"] == f"/payments/{payment.id}/"
    assert payment.status == "completed" and payment.sca_exemption == "trusted_beneficiary"
    detail = client.get(paid["Location"]).content.decode()
    assert "to a beneficiary you trusted (RTS Art. 13)" in detail

    untrust = client.post(f"/payments/beneficiaries/{beneficiary.id}/untrust/")
    assert untrust.status_code == 302
    beneficiary.refresh_from_db()
    assert not beneficiary.is_trusted
    assert list(
        AuditEvent.objects.filter(type__startswith="beneficiary.").order_by("id").values_list("type", flat=True)
    ) == [
        "beneficiary.trust_requested",
        "beneficiary.trust_failed",
        "beneficiary.trusted",
        "beneficiary.untrusted",
    ]

    time_machine.shift(timedelta(minutes=10))
    stale = client.get(f"/payments/beneficiaries/{beneficiary.id}/trust/")
    assert stale.status_code == 302 and stale["Location"].startswith("/accounts/reauth/")


def test_another_customers_beneficiary_trust_page_is_404(
    client: Client, login: Callable[..., Any], customer: User, other_customer: User
) -> None:
    theirs = Beneficiary.objects.create(owner=other_customer, name="Theirs", iban=EXTERNAL_IBAN)
    login(client, customer)
    assert client.get(f"/payments/beneficiaries/{theirs.id}/trust/").status_code == 404
    assert client.post(f"/payments/beneficiaries/{theirs.id}/untrust/").status_code == 404


def test_standing_order_on_the_web_confirmed_once(
    client: Client,
    login: Callable[..., Any],
    customer: User,
    account: BankAccount,
    last_email_code: Callable[[], tuple[str, str]],
) -> None:
    login(client, customer)
    assert client.get("/payments/standing-orders/new/").status_code == 200
    created = client.post(
        "/payments/standing-orders/new/",
        {
            "from_account": str(account.id),
            "beneficiary": "",
            "payee_name": "Gym",
            "to_iban": EXTERNAL_IBAN,
            "amount": "29.90",
            "reference": "Membership",
            "frequency": "monthly",
        },
    )
    order = StandingOrder.objects.get()
    assert created.status_code == 302 and created["Location"] == f"/payments/standing-orders/{order.id}/confirm/"
    page = client.get(created["Location"]).content.decode()
    assert "29.90 EUR" in page and "Every month" in page
    client.post(created["Location"], {"action": "send", "method": "email"})
    code, _ = last_email_code()
    done = client.post(created["Location"], {"action": "confirm", "method": "email", "code": code})
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == "active" and order.executions == 1
    listing = client.get("/payments/standing-orders/").content.decode()
    assert "Active" in listing and "29.90 EUR" in listing
    cancelled = client.post(f"/payments/standing-orders/{order.id}/cancel/")
    assert cancelled.status_code == 302
    order.refresh_from_db()
    assert order.status == "cancelled"


def test_this_wasnt_me_reports_the_payment(
    client: Client, login: Callable[..., Any], customer: User, account: BankAccount
) -> None:
    payment = services.payment_create(
        user=customer, from_account=account.id, amount="12.00", currency="EUR", to_iban=EXTERNAL_IBAN
    ).payment
    login(client, customer)
    page = client.get(f"/payments/{payment.id}/").content.decode()
    assert "This wasn't me" in page and "No second factor needed" in page
    reported = client.post(f"/payments/{payment.id}/report-fraud/", {"reason": "I never paid this"})
    assert reported.status_code == 302
    payment.refresh_from_db()
    assert payment.fraud_reported_at is not None and payment.fraud_reported_by == customer
    event = AuditEvent.objects.get(type="payment.fraud_reported")
    assert event.reason == "I never paid this" and event.details["source"] == "customer"
    assert "Reported as not made by you" in client.get(f"/payments/{payment.id}/").content.decode()


def test_large_payment_without_a_factor_is_confirmed_with_an_emailed_code_and_invites_a_stronger_one(
    client: Client,
    login: Callable[..., Any],
    customer: User,
    account: BankAccount,
    last_email_code: Callable[[], tuple[str, str]],
) -> None:
    login(client, customer)
    form = {
        "from_account": str(account.id),
        "beneficiary": "",
        "payee_name": "Jane Doe",
        "to_iban": EXTERNAL_IBAN,
        "amount": "10000.01",
        "reference": "",
        "submission": _submission(client),
    }
    created = client.post("/payments/new/", form)
    payment = Payment.objects.get()
    assert created["Location"] == f"/payments/{payment.id}/confirm/"
    page = client.get(created["Location"]).content.decode()
    assert "add an authenticator app or a passkey" in page and "Send code by email" in page
    client.post(created["Location"], {"action": "send", "method": "email"})
    code, text = last_email_code()
    assert "10000.01 EUR" in text
    done = client.post(created["Location"], {"action": "confirm", "method": "email", "code": code})
    assert done.status_code == 302
    payment.refresh_from_db()
    assert payment.status == "completed" and payment.sca_required
    assert "Confirmed with a second factor" in client.get(f"/payments/{payment.id}/").content.decode()


def test_art10_under_psd2_account_information_needs_sca_every_90_days(
    client: Client, customer: User, account: BankAccount, settings: Any, time_machine: Any
) -> None:
    from payments.models import ScaState
    from tests.audit.helpers import web_login

    settings.SECURITY_PROFILE = "psd2"
    time_machine.move_to(timezone.now(), tick=False)
    old = services.payment_create(
        user=customer, from_account=account.id, amount="5.00", currency="EUR", to_iban=EXTERNAL_IBAN
    ).payment
    Payment.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=120))
    web_login(client, customer, amr=["pwd"])  # a password-only session
    first = client.get("/")
    assert first.status_code == 302 and "level=mfa" in first["Location"]  # no SCA yet: Art. 10(2)(a)

    second = Client()
    web_login(second, customer, amr=["pwd", "otp"])  # a second-factor session: full history
    page = second.get("/payments/").content.decode()
    assert f"/payments/{old.id}/" in page
    assert ScaState.objects.get(user=customer).account_sca_at is not None

    assert client.get("/").status_code == 200  # SCA within 90 days: balances without a factor
    listing = client.get("/payments/").content.decode()
    assert f"/payments/{old.id}/" not in listing and "Confirm with your second factor" in listing
    time_machine.shift(timedelta(days=91))
    web_login(client, customer, amr=["pwd"])
    assert client.get("/payments/").status_code == 302


def test_art10_does_not_apply_in_the_default_profile(client: Client, customer: User, account: BankAccount) -> None:
    from tests.audit.helpers import web_login

    web_login(client, customer, amr=["pwd"])
    assert client.get("/").status_code == 200 and client.get("/payments/").status_code == 200
