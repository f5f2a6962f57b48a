from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Beneficiary, LedgerEntry, Payment
from payments.selectors import internal_balance
from payments.tasks import payments_expire_pending
from tests.payments.conftest import EXTERNAL_IBAN

pytestmark = pytest.mark.usefixtures("email_factor", "totp_factor")


def pay(api: APIClient, account: BankAccount, amount: str, key: str, **extra: Any) -> Any:
    body = {"from_account": str(account.id), "amount": amount, "currency": "EUR", **extra}
    if "beneficiary" not in extra:
        body.setdefault("to_iban", EXTERNAL_IBAN)
        body.setdefault("payee_name", "Jane Doe")
    return api.post("/api/v1/payments", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_threshold_itself_completes_without_step_up(
    api: APIClient, account: BankAccount, audit_types: Callable[..., list[str]]
) -> None:
    response = pay(api, account, "10000.00", "t-1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "completed" and body["amount"] == "10000.00" and "step_up" not in body
    account.refresh_from_db()
    assert account.balance == Decimal("40000.00")
    assert internal_balance(kind=BankAccount.Kind.CLEARING, currency="EUR") == Decimal("10000.00")
    assert audit_types(prefix="payment.") == [
        "payment.account_opened",
        "payment.created",
        "payment.sca_decided",
        "payment.completed",
    ]
    assert body["sca"] == {"required": False, "exemption": None, "article": "STEP_UP_THRESHOLD"}
    # not above the threshold: no "large payment" email
    assert not any("sent" in m.subject for m in mail.outbox)


def test_one_cent_above_threshold_needs_step_up_then_email_code_completes(
    api: APIClient,
    customer: User,
    account: BankAccount,
    last_email_code: Callable[[], tuple[str, str]],
    audit_types: Callable[..., list[str]],
    run_outbox: Callable[[], int],
) -> None:
    response = pay(api, account, "10000.01", "t-2")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending_step_up"
    step_up = body["step_up"]
    assert set(step_up) >= {"challenge_id", "methods", "expires_at"}
    assert set(step_up["methods"]) == {"totp", "email"}
    assert not LedgerEntry.objects.filter(account=account, posting__kind="payment").exists()

    sent = api.post(f"/api/v1/payments/{body['id']}/step-up/challenge", {"method": "email"}, format="json")
    assert sent.status_code == 202, sent.content
    code, text = last_email_code()
    assert "10000.01 EUR" in text and "Jane Doe" in text and EXTERNAL_IBAN in text

    done = api.post(f"/api/v1/payments/{body['id']}/confirm", {"code": code, "method": "email"}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "completed"
    account.refresh_from_db()
    assert account.balance == Decimal("39999.99")
    types = audit_types(prefix="payment.")
    assert types == [
        "payment.account_opened",
        "payment.created",
        "payment.sca_decided",
        "payment.step_up_issued",
        "payment.step_up_issued",
        "payment.step_up_passed",
        "payment.completed",
    ]
    run_outbox()
    assert any(m.subject == "Payment of 10000.01 EUR sent" for m in mail.outbox)
    # a second confirmation of a completed payment is gone
    again = api.post(f"/api/v1/payments/{body['id']}/confirm", {"code": code, "method": "email"}, format="json")
    assert again.status_code == 410


def test_totp_confirms_without_method_given(api: APIClient, account: BankAccount, totp_now: Callable[[], str]) -> None:
    payment_id = pay(api, account, "15000.00", "t-3").json()["id"]
    done = api.post(f"/api/v1/payments/{payment_id}/confirm", {"code": totp_now()}, format="json")
    assert done.status_code == 200, done.content
    assert Payment.objects.get(id=payment_id).step_up_method == "totp"


def test_wrong_codes_count_and_third_refuses_with_410(
    api: APIClient, account: BankAccount, audit_types: Callable[..., list[str]]
) -> None:
    payment_id = pay(api, account, "12000.00", "t-4").json()["id"]
    for left in (2, 1):
        wrong = api.post(f"/api/v1/payments/{payment_id}/confirm", {"code": "000000", "method": "totp"}, format="json")
        assert wrong.status_code == 400
        assert wrong.json()["code"] == "invalid_code"
        assert wrong.json()["attempts_left"] == left
    last = api.post(f"/api/v1/payments/{payment_id}/confirm", {"code": "000000", "method": "totp"}, format="json")
    assert last.status_code == 410
    assert last.json()["code"] == "step_up_exhausted"
    payment = Payment.objects.get(id=payment_id)
    assert payment.status == "refused" and payment.posting is None
    assert audit_types(prefix="payment.step_up_failed").count("payment.step_up_failed") == 3
    refused = AuditEvent.objects.get(type="payment.refused")
    assert refused.reason == "step_up_exhausted"
    account.refresh_from_db()
    assert account.balance == Decimal("50000.00")


def test_expired_after_five_minutes_is_410_and_swept(
    api: APIClient, account: BankAccount, totp_now: Callable[[], str], time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    first = pay(api, account, "12000.00", "t-5").json()["id"]
    second = pay(api, account, "13000.00", "t-6").json()["id"]
    time_machine.shift(timedelta(minutes=5, seconds=1))
    late = api.post(f"/api/v1/payments/{first}/confirm", {"code": totp_now(), "method": "totp"}, format="json")
    assert late.status_code == 410
    assert late.json()["code"] == "step_up_expired"
    assert payments_expire_pending() == 1
    assert Payment.objects.get(id=second).status == "expired"
    assert AuditEvent.objects.filter(type="payment.expired").count() == 2


def test_just_before_expiry_still_confirms(
    api: APIClient, account: BankAccount, totp_now: Callable[[], str], time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    payment_id = pay(api, account, "12000.00", "t-7").json()["id"]
    time_machine.shift(timedelta(minutes=4, seconds=59))
    assert payments_expire_pending() == 0
    ok = api.post(f"/api/v1/payments/{payment_id}/confirm", {"code": totp_now(), "method": "totp"}, format="json")
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "change",
    [{"amount": Decimal("12000.01")}, {"payee_iban": "GB33BUKB20201555555555"}, {"currency": "USD"}],
)
def test_changing_a_pending_payment_in_the_database_fails_confirmation(
    api: APIClient,
    account: BankAccount,
    last_email_code: Callable[[], tuple[str, str]],
    change: dict[str, Any],
) -> None:
    payment_id = pay(api, account, "12000.00", "t-8").json()["id"]
    assert (
        api.post(f"/api/v1/payments/{payment_id}/step-up/challenge", {"method": "email"}, format="json").status_code
        == 202
    )
    code, _ = last_email_code()
    Payment.objects.filter(id=payment_id).update(**change)
    response = api.post(f"/api/v1/payments/{payment_id}/confirm", {"code": code, "method": "email"}, format="json")
    assert response.status_code == 410
    assert response.json()["code"] == "payment_changed"
    payment = Payment.objects.get(id=payment_id)
    assert payment.status == "refused" and payment.posting is None
    assert AuditEvent.objects.filter(type="payment.step_up_failed", reason="binding_mismatch").count() == 1
    account.refresh_from_db()
    assert account.balance == Decimal("50000.00")


def test_code_for_one_payment_does_not_confirm_another(
    api: APIClient, account: BankAccount, last_email_code: Callable[[], tuple[str, str]]
) -> None:
    first = pay(api, account, "12000.00", "t-9").json()["id"]
    second = pay(api, account, "12000.00", "t-10").json()["id"]
    api.post(f"/api/v1/payments/{first}/step-up/challenge", {"method": "email"}, format="json")
    code, _ = last_email_code()
    response = api.post(f"/api/v1/payments/{second}/confirm", {"code": code, "method": "email"}, format="json")
    assert response.status_code == 400
    assert Payment.objects.get(id=second).status == "pending_step_up"


def test_funds_checked_again_at_confirmation(api: APIClient, customer: User, totp_now: Callable[[], str]) -> None:
    small = services.account_open(owner=customer, currency="EUR", opening_balance="15000.00")
    pending = pay(api, small, "12000.00", "t-11").json()["id"]
    assert pay(api, small, "5000.00", "t-12").status_code == 201
    response = api.post(f"/api/v1/payments/{pending}/confirm", {"code": totp_now(), "method": "totp"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "insufficient_funds"
    assert Payment.objects.get(id=pending).status == "refused"
    small.refresh_from_db()
    assert small.balance == Decimal("10000.00")


def test_unusual_amount_needs_step_up(api: APIClient, account: BankAccount) -> None:
    for i in range(3):
        assert pay(api, account, "100.00", f"u-{i}").status_code == 201
    assert pay(api, account, "500.00", "u-ok").status_code == 201
    unusual = pay(api, account, "2000.00", "u-big")
    assert unusual.status_code == 202
    assert unusual.json()["step_up"]["reasons"] == ["unusual_amount"]


def test_first_payment_to_new_beneficiary_needs_step_up(
    api: APIClient, customer: User, account: BankAccount, totp_now: Callable[[], str], time_machine: Any
) -> None:
    beneficiary = Beneficiary.objects.create(owner=customer, name="Jane Doe", iban=EXTERNAL_IBAN)
    first = pay(api, account, "50.00", "b-1", beneficiary=str(beneficiary.id))
    assert first.status_code == 202
    assert first.json()["step_up"]["reasons"] == ["new_beneficiary"]
    assert first.json()["to_iban"] == EXTERNAL_IBAN and first.json()["payee_name"] == "Jane Doe"
    ok = api.post(f"/api/v1/payments/{first.json()['id']}/confirm", {"code": totp_now()}, format="json")
    assert ok.status_code == 200
    assert pay(api, account, "50.00", "b-2", beneficiary=str(beneficiary.id)).status_code == 201


def test_beneficiary_older_than_a_day_is_not_unusual(api: APIClient, customer: User, account: BankAccount) -> None:
    beneficiary = Beneficiary.objects.create(
        owner=customer, name="Jane", iban=EXTERNAL_IBAN, created_at=timezone.now() - timedelta(hours=25)
    )
    assert pay(api, account, "50.00", "b-3", beneficiary=str(beneficiary.id)).status_code == 201


def test_internal_iban_is_credited_directly(api: APIClient, account: BankAccount, other_account: BankAccount) -> None:
    response = pay(api, account, "25.50", "i-1", to_iban=other_account.iban)
    assert response.status_code == 201
    other_account.refresh_from_db()
    assert other_account.balance == Decimal("125.50")
    assert internal_balance(kind=BankAccount.Kind.CLEARING, currency="EUR") == Decimal("0.00")
    # the other customer's account name is not revealed to the payer
    assert response.json()["payee_name"] == "Jane Doe"


def test_unknown_iban_of_this_bank_is_refused(api: APIClient, account: BankAccount) -> None:
    from django.conf import settings
    from schwifty import IBAN

    ghost = str(IBAN.generate(settings.BANK_IBAN_COUNTRY, bank_code=settings.BANK_CODE, account_code="9999999999"))
    response = pay(api, account, "1.00", "i-2", to_iban=ghost)
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_account"


def test_customer_without_second_factor_confirms_a_large_payment_with_an_emailed_code(
    customer: User,
    account: BankAccount,
    last_email_code: Callable[[], tuple[str, str]],
    audit_types: Callable[..., list[str]],
) -> None:
    """Issue 13 item 4: no dead end. A code to the verified address, bound to the payment, and an
    invitation to add a stronger factor."""
    from mfa.models import EmailFactor, TOTPFactor
    from tests.payments.conftest import api_client_for

    EmailFactor.objects.filter(user=customer).delete()
    TOTPFactor.objects.filter(user=customer).delete()
    api = api_client_for(customer)
    response = pay(api, account, "10000.01", "fallback-1")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["step_up"]["methods"] == ["email"]
    assert body["step_up"]["add_factor"]["url"] == "/security/"
    assert "authenticator app or a passkey" in body["step_up"]["add_factor"]["detail"]
    assert body["sca"]["required"] is True
    sent = api.post(f"/api/v1/payments/{body['id']}/step-up/challenge", {"method": "email"}, format="json")
    assert sent.status_code == 202, sent.content
    code, text = last_email_code()
    assert "10000.01 EUR" in text and EXTERNAL_IBAN in text
    done = api.post(f"/api/v1/payments/{body['id']}/confirm", {"code": code}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "completed" and done.json()["sca"]["required"] is True
    issued = AuditEvent.objects.filter(type="payment.step_up_issued", reason="above_threshold").get()
    assert issued.details["email_fallback"] is True
    assert "payment.step_up_passed" in audit_types(prefix="payment.")


def test_the_emailed_fallback_code_of_one_payment_does_not_confirm_another(
    customer: User, account: BankAccount, last_email_code: Callable[[], tuple[str, str]]
) -> None:
    from mfa.models import EmailFactor, TOTPFactor
    from tests.payments.conftest import api_client_for

    EmailFactor.objects.filter(user=customer).delete()
    TOTPFactor.objects.filter(user=customer).delete()
    api = api_client_for(customer)
    first = pay(api, account, "10000.01", "fallback-a").json()
    second = pay(api, account, "10000.02", "fallback-b").json()
    assert api.post(f"/api/v1/payments/{first['id']}/step-up/challenge", {"method": "email"}).status_code == 202
    code, _ = last_email_code()
    refused = api.post(f"/api/v1/payments/{second['id']}/confirm", {"code": code, "method": "email"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_code"
    assert Payment.objects.get(id=second["id"]).status == "pending_step_up"
    assert Payment.objects.get(id=first["id"]).status == "pending_step_up"
    account.refresh_from_db()
    assert account.balance == Decimal("50000.00")


@pytest.mark.parametrize("who", ["staff", "security", "no_fallback_setting"])
def test_no_email_fallback_for_staff_the_security_group_or_when_forbidden(
    customer: User, account: BankAccount, who: str, settings: Any
) -> None:
    from django.contrib.auth.models import Group

    from mfa.models import EmailFactor, TOTPFactor

    EmailFactor.objects.filter(user=customer).delete()
    TOTPFactor.objects.filter(user=customer).delete()
    if who == "staff":
        customer.is_staff = True
        customer.save(update_fields=["is_staff"])
    elif who == "security":
        customer.groups.add(Group.objects.get_or_create(name="security")[0])
    else:
        settings.STEP_UP_EMAIL_FALLBACK = False
    with pytest.raises(services.SecondFactorRequired) as refused:
        services.payment_create(
            user=customer, from_account=account.id, amount="10000.01", currency="EUR", to_iban=EXTERNAL_IBAN
        )
    assert refused.value.status == 403 and refused.value.code == "second_factor_required"
    assert not Payment.objects.exists()
