"""Issue 16: SCA on every remote payment (SECURITY_PROFILE=psd2) unless an RTS exemption applies,
each decision audited with its article; splitting does not dodge the threshold (both profiles)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from payments import sca, services
from payments.models import BankAccount, Beneficiary, Payment, ScaState
from tests.payments.conftest import EXTERNAL_IBAN

KNOWN = services.PayerContext(device="known", country="NL")
OTHER_IBAN = "GB33BUKB20201555555555"


@pytest.fixture
def psd2(settings: Any) -> Iterator[Any]:
    settings.SECURITY_PROFILE = "psd2"
    yield settings


@pytest.fixture
def no_tra(settings: Any) -> None:
    """Isolates Art. 16: no transaction-risk-analysis band is open."""
    settings.SCA_TRA_BANDS = []


def pay(user: User, account: BankAccount, amount: str, iban: str | None = EXTERNAL_IBAN, **extra: Any) -> Payment:
    extra.setdefault("payer", KNOWN)
    outcome = services.payment_create(
        user=user, from_account=account.id, amount=amount, currency="EUR", to_iban=iban, payee_name="Jane Doe", **extra
    )
    return outcome.payment


def decision(payment: Payment) -> AuditEvent:
    """The audit row of the payment's SCA decision: exactly one per payment."""
    return AuditEvent.objects.get(type="payment.sca_decided", details__payment=str(payment.id))


def assert_exempt(payment: Payment, exemption: str, article: str) -> None:
    assert payment.status == Payment.Status.COMPLETED, (payment.status, payment.step_up_reasons)
    assert (payment.sca_required, payment.sca_exemption) == (False, exemption)
    row = decision(payment)
    assert row.reason == exemption and row.details["article"] == article and row.details["exemption"] == exemption


def assert_challenged(payment: Payment, reason: str, article: str) -> None:
    assert payment.status == Payment.Status.PENDING_STEP_UP
    assert payment.sca_required and payment.sca_exemption == "" and reason in payment.step_up_reasons
    row = decision(payment)
    assert row.reason == "sca_required" and row.details["article"] == article and row.details["required"] is True


def confirm_totp(user: User, payment: Payment, totp_now: Callable[[], str], time_machine: Any) -> None:
    time_machine.shift(timedelta(seconds=31))  # a TOTP code is accepted once per time step
    services.payment_confirm(user=user, payment_id=payment.id, method="totp", code=totp_now())


# --- The profile -------------------------------------------------------------------------------


def _settings_under(profile: str, **env: str) -> dict[str, str]:
    code = (
        "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='config.settings.test';"
        "from django.conf import settings as s;"
        "print(s.SESSION_IDLE_TIMEOUT, s.AXES_FAILURE_LIMIT, s.MFA_LOCK_AFTER_FAILURES, s.STEP_UP_EMAIL_FALLBACK,"
        " s.JWT_REFRESH_LIFETIME_SECONDS, s.STEP_UP_THRESHOLD)"
    )
    import os

    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "SECURITY_PROFILE": profile, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    keys = ["idle", "axes", "mfa_lock", "fallback", "refresh", "threshold"]
    return dict(zip(keys, out, strict=True))


def test_the_psd2_profile_is_one_setting_for_art4_and_no_email_fallback() -> None:
    default = _settings_under("default")
    assert default == {
        "idle": "1800",
        "axes": "5",
        "mfa_lock": "5",
        "fallback": "True",
        "refresh": str(7 * 24 * 3600),
        "threshold": "10000.00",
    }
    strict = _settings_under(
        "psd2", SESSION_IDLE_TIMEOUT="3600", LOCKOUT_FAILURE_LIMIT="10", MFA_LOCK_AFTER_FAILURES="9"
    )
    assert strict == {
        "idle": "300",
        "axes": "5",
        "mfa_lock": "5",
        "fallback": "False",
        "refresh": "300",
        "threshold": "10000.00",
    }


# --- Art. 16 low value ---------------------------------------------------------------------------


def test_low_value_30_00_is_exempt_and_30_01_is_challenged(
    psd2: Any, no_tra: None, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    assert_exempt(pay(customer, account, "30.00"), "low_value", "RTS Art. 16")
    assert_challenged(pay(customer, account, "30.01"), "psd2_sca", "PSD2 Art. 97(1)(b)")
    state = ScaState.objects.get(user=customer)
    assert (state.amount_since_sca, state.count_since_sca) == (Decimal("30.00"), 1)


def test_low_value_cumulative_100_00_then_challenged_and_reset_by_sca(
    psd2: Any,
    no_tra: None,
    customer: User,
    account: BankAccount,
    totp_factor: Any,
    totp_now: Callable[[], str],
    time_machine: Any,
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    for amount in ("30.00", "30.00", "30.00", "10.00"):  # 100.00 exactly, four payments
        assert_exempt(pay(customer, account, amount), "low_value", "RTS Art. 16")
    over = pay(customer, account, "0.01")
    assert_challenged(over, "psd2_sca", "PSD2 Art. 97(1)(b)")
    confirm_totp(customer, over, totp_now, time_machine)
    state = ScaState.objects.get(user=customer)
    assert (state.amount_since_sca, state.count_since_sca) == (Decimal("0.00"), 0) and state.last_sca_at
    assert_exempt(pay(customer, account, "30.00"), "low_value", "RTS Art. 16")


def test_low_value_fifth_consecutive_payment_is_exempt_the_sixth_is_not(
    psd2: Any, no_tra: None, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    for _ in range(5):
        assert_exempt(pay(customer, account, "1.00"), "low_value", "RTS Art. 16")
    assert_challenged(pay(customer, account, "1.00"), "psd2_sca", "PSD2 Art. 97(1)(b)")


def test_low_value_counters_can_be_the_amount_alone(
    psd2: Any, no_tra: None, settings: Any, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    settings.SCA_LOW_VALUE_COUNTERS = "amount"  # Art. 16(b) alone: the count does not limit
    for _ in range(7):
        assert_exempt(pay(customer, account, "1.00"), "low_value", "RTS Art. 16")


def test_a_small_payment_to_a_new_payee_from_a_new_device_is_challenged(
    psd2: Any, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    payment = pay(customer, account, "20.00", payer=services.PayerContext(device="new"))
    assert_challenged(payment, "high_risk", "RTS Art. 2")
    row = decision(payment)
    assert {"new_payee", "new_device"} <= set(row.details["risk_factors"]) and row.details["risk_score"] >= 50


# --- Splitting ------------------------------------------------------------------------------------


def test_splitting_does_not_dodge_the_threshold_in_the_default_profile(
    customer: User, account: BankAccount, totp_factor: Any, totp_now: Callable[[], str], time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    first = pay(customer, account, "5000.00")
    assert first.status == "completed" and not first.sca_required
    assert decision(first).details["article"] == "STEP_UP_THRESHOLD"
    second = pay(customer, account, "5000.01")
    assert_challenged(second, "cumulative_above_threshold", "PSD2 Art. 97(1)(b)")
    confirm_totp(customer, second, totp_now, time_machine)
    # SCA applied: the window starts again
    third = pay(customer, account, "9999.99")
    assert third.status == "completed"
    assert_challenged(pay(customer, account, "9999.99"), "cumulative_above_threshold", "PSD2 Art. 97(1)(b)")


def test_splitting_window_is_a_setting_and_payments_older_than_it_do_not_count(
    settings: Any, customer: User, account: BankAccount, totp_factor: Any, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    assert pay(customer, account, "5000.00").status == "completed"
    time_machine.shift(timedelta(hours=settings.SCA_CUMULATIVE_WINDOW_HOURS, seconds=1))
    assert pay(customer, account, "5000.01").status == "completed"


def test_splitting_counts_in_the_psd2_profile_too(
    psd2: Any, customer: User, account: BankAccount, other_customer: User, totp_factor: Any
) -> None:
    beneficiary = Beneficiary.objects.create(
        owner=customer, name="Landlord", iban=EXTERNAL_IBAN, trusted_at=timezone.now(), trusted_iban=EXTERNAL_IBAN
    )
    assert_exempt(pay(customer, account, "6000.00", beneficiary=None), "trusted_beneficiary", "RTS Art. 13")
    assert beneficiary.is_trusted
    assert_challenged(pay(customer, account, "4000.01"), "cumulative_above_threshold", "PSD2 Art. 97(1)(b)")


# --- Art. 15 own accounts, Art. 13 trusted beneficiaries -----------------------------------------


def test_own_accounts_are_exempt_at_any_amount(psd2: Any, customer: User, account: BankAccount) -> None:
    savings = services.account_open(owner=customer, currency="EUR", name="Savings")
    payment = pay(customer, account, "20000.00", iban=savings.iban)
    assert_exempt(payment, "own_accounts", "RTS Art. 15")
    savings.refresh_from_db()
    assert savings.balance == Decimal("20000.00")
    # own-account transfers are not "paid out": they do not count toward the threshold
    assert ScaState.objects.get(user=customer).count_since_sca == 0


def test_another_customers_account_at_this_bank_is_not_own_accounts(
    psd2: Any, customer: User, account: BankAccount, other_account: BankAccount, totp_factor: Any
) -> None:
    assert pay(customer, account, "600.00", iban=other_account.iban).sca_exemption == ""


def _trust(api: APIClient, beneficiary_id: str, code: str) -> Any:
    begun = api.post(f"/api/v1/beneficiaries/{beneficiary_id}/trust", {}, format="json")
    assert begun.status_code == 202, begun.content
    assert set(begun.json()["step_up"]) >= {"challenge_id", "methods", "expires_at"}
    return api.post(f"/api/v1/beneficiaries/{beneficiary_id}/trust/confirm", {"code": code}, format="json")


def test_trust_added_with_sca_then_payments_skip_it_removed_and_dropped_by_an_iban_change(
    psd2: Any,
    api: APIClient,
    customer: User,
    account: BankAccount,
    totp_factor: Any,
    totp_now: Callable[[], str],
    time_machine: Any,
    rf: Any,
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    beneficiary = Beneficiary.objects.create(owner=customer, name="Landlord", iban=EXTERNAL_IBAN)
    wrong = _trust(api, str(beneficiary.id), "000000")
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    beneficiary.refresh_from_db()
    assert not beneficiary.is_trusted
    ok = _trust(api, str(beneficiary.id), totp_now())
    assert ok.status_code == 200, ok.content
    assert ok.json()["trusted"] is True
    assert AuditEvent.objects.filter(type="beneficiary.trusted", user=customer).count() == 1
    assert AuditEvent.objects.filter(type="beneficiary.trust_failed", user=customer).count() == 1

    paid = pay(customer, account, "950.00", beneficiary=str(beneficiary.id), iban=None)
    assert_exempt(paid, "trusted_beneficiary", "RTS Art. 13")

    removed = api.delete(f"/api/v1/beneficiaries/{beneficiary.id}/trust")
    assert removed.status_code == 200 and removed.json()["trusted"] is False
    assert AuditEvent.objects.filter(type="beneficiary.untrusted", user=customer).count() == 1
    assert pay(customer, account, "950.00", beneficiary=str(beneficiary.id), iban=None).sca_required

    time_machine.shift(timedelta(seconds=31))
    assert _trust(api, str(beneficiary.id), totp_now()).status_code == 200
    request = rf.post("/")
    request.user = customer
    request.auth = {"auth_time": timezone.now().timestamp(), "amr": ["pwd"]}
    services.beneficiary_change(
        request=request, user=customer, beneficiary_id=beneficiary.id, name="Landlord", iban=OTHER_IBAN
    )
    beneficiary.refresh_from_db()
    assert not beneficiary.is_trusted and beneficiary.trusted_iban == ""
    changed = AuditEvent.objects.get(type="beneficiary.changed")
    assert changed.details["trust_dropped"] is True
    assert pay(customer, account, "950.00", beneficiary=str(beneficiary.id), iban=None).sca_required


def test_trusting_needs_a_recent_authentication(customer: User, totp_factor: Any, time_machine: Any) -> None:
    from tests.payments.conftest import api_client_for

    time_machine.move_to(timezone.now(), tick=False)
    api = api_client_for(customer)
    beneficiary = Beneficiary.objects.create(owner=customer, name="Landlord", iban=EXTERNAL_IBAN)
    time_machine.shift(timedelta(minutes=6))
    stale = api.post(f"/api/v1/beneficiaries/{beneficiary.id}/trust", {}, format="json")
    assert stale.status_code == 403 and stale.json()["code"] == "reauth_required"
    beneficiary.refresh_from_db()
    assert beneficiary.trust_challenge_id is None
    assert not AuditEvent.objects.filter(type="beneficiary.trust_requested").exists()


def test_another_customers_beneficiary_cannot_be_trusted(api: APIClient, other_customer: User) -> None:
    theirs = Beneficiary.objects.create(owner=other_customer, name="Theirs", iban=EXTERNAL_IBAN)
    assert api.post(f"/api/v1/beneficiaries/{theirs.id}/trust", {}, format="json").status_code == 404
    assert api.delete(f"/api/v1/beneficiaries/{theirs.id}/trust").status_code == 404


def test_in_the_default_profile_trust_lifts_the_new_beneficiary_check_but_not_the_threshold(
    customer: User, account: BankAccount, totp_factor: Any
) -> None:
    beneficiary = Beneficiary.objects.create(owner=customer, name="New", iban=EXTERNAL_IBAN)
    assert pay(customer, account, "100.00").step_up_reasons == ["new_beneficiary"]
    Beneficiary.objects.filter(id=beneficiary.id).update(trusted_at=timezone.now(), trusted_iban=EXTERNAL_IBAN)
    assert_exempt(pay(customer, account, "100.00"), "trusted_beneficiary", "RTS Art. 13")
    assert_challenged(pay(customer, account, "10000.01"), "above_threshold", "PSD2 Art. 97(1)(b)")


# --- Art. 14 recurring --------------------------------------------------------------------------


def test_a_recurring_series_needs_sca_once_then_runs_without_it(
    psd2: Any,
    api: APIClient,
    customer: User,
    account: BankAccount,
    email_factor: Any,
    last_email_code: Callable[[], tuple[str, str]],
    time_machine: Any,
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    created = api.post(
        "/api/v1/standing-orders",
        {
            "from_account": str(account.id),
            "to_iban": EXTERNAL_IBAN,
            "payee_name": "Landlord",
            "amount": "750.00",
            "currency": "EUR",
            "frequency": "monthly",
            "reference": "Rent",
        },
        format="json",
    )
    assert created.status_code == 202, created.content
    order = created.json()
    assert order["status"] == "pending_sca" and order["step_up"]["methods"] == ["email"]
    assert not Payment.objects.exists()
    # nothing runs before the SCA
    services.standing_orders_run()
    assert not Payment.objects.exists()

    assert api.post(f"/api/v1/standing-orders/{order['id']}/challenge", {"method": "email"}).status_code == 202
    code, text = last_email_code()
    assert "750.00 EUR" in text and EXTERNAL_IBAN in text
    done = api.post(f"/api/v1/standing-orders/{order['id']}/confirm", {"code": code}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "active" and done.json()["executions"] == 1
    first = Payment.objects.get()
    assert first.status == "completed" and first.sca_required and first.sca_article == "RTS Art. 14(1)"
    assert decision(first).details["reasons"] == ["standing_order_first_execution"]

    time_machine.shift(timedelta(days=32))
    assert services.standing_orders_run() == 1
    later = Payment.objects.exclude(id=first.id).get()
    assert_exempt(later, "recurring", "RTS Art. 14")
    assert later.channel == "standing" and later.amount == Decimal("750.00")

    from tests.payments.conftest import api_client_for

    api = api_client_for(customer)  # a month later: a new login
    changed = api.patch(f"/api/v1/standing-orders/{order['id']}", {"amount": "800.00"}, format="json")
    assert changed.status_code == 202 and changed.json()["status"] == "pending_sca"
    time_machine.shift(timedelta(days=32))
    assert services.standing_orders_run() == 0  # paused until the change is confirmed
    assert Payment.objects.count() == 2
    assert AuditEvent.objects.filter(type="standing_order.changed").count() == 1


def test_a_series_whose_terms_changed_without_sca_does_not_run(
    psd2: Any,
    customer: User,
    account: BankAccount,
    email_factor: Any,
    last_email_code: Callable[[], Any],
    time_machine: Any,
) -> None:
    from payments.models import StandingOrder

    time_machine.move_to(timezone.now(), tick=False)
    order, _ = services.standing_order_create(
        user=customer,
        from_account=account.id,
        amount="50.00",
        currency="EUR",
        frequency="weekly",
        to_iban=EXTERNAL_IBAN,
    )
    services.standing_order_send(user=customer, order_id=order.id, method="email")
    code, _ = last_email_code()
    services.standing_order_confirm(user=customer, order_id=order.id, method="email", code=code)
    StandingOrder.objects.filter(id=order.id).update(amount=Decimal("5000.00"))  # written behind the app's back
    time_machine.shift(timedelta(days=8))
    services.standing_orders_run()
    assert Payment.objects.count() == 1
    failed = AuditEvent.objects.get(type="standing_order.failed")
    assert failed.reason == "standing_order_needs_sca"


# --- Art. 18 transaction risk analysis, Art. 19 fraud rate, Art. 20 --------------------------------


def _history(user: User, account: BankAccount, settings: Any) -> None:
    """Three earlier payments to the payee (made under the default profile): a known payee with a
    spending pattern."""
    settings.SECURITY_PROFILE = "default"
    for _ in range(3):
        assert pay(user, account, "100.00").status == "completed"
    settings.SECURITY_PROFILE = "psd2"


def test_tra_exempts_a_low_score_and_challenges_a_high_one(
    psd2: Any, customer: User, account: BankAccount, totp_factor: Any, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    _history(customer, account, psd2)
    time_machine.shift(timedelta(hours=2))
    ScaState.objects.filter(user=customer).update(amount_since_sca=Decimal("100.00"))  # Art. 16 used up
    low = pay(customer, account, "200.00")
    assert_exempt(low, "transaction_risk_analysis", "RTS Art. 18")
    assert decision(low).details["risk_score"] < 40
    # a new device, a new payee in a new country: above the TRA limit (and high risk)
    high = pay(customer, account, "200.00", iban=OTHER_IBAN, payer=services.PayerContext(device="new"))
    assert high.sca_required
    row = decision(high)
    assert row.details["risk_score"] >= 40 and {"new_device", "new_payee"} <= set(row.details["risk_factors"])
    # above the highest band (500.00) TRA never applies
    assert pay(customer, account, "500.01").sca_required


def test_the_fraud_rate_crossing_the_reference_stops_the_exemption_and_tells_the_security_team(
    psd2: Any,
    customer: User,
    account: BankAccount,
    other_customer: User,
    totp_factor: Any,
    time_machine: Any,
    run_outbox: Callable[[], int],
) -> None:
    from django.contrib.auth.models import Group
    from django.core import mail

    from tests.accounts.factories import UserFactory

    analyst = cast(User, UserFactory(email="analyst@bank.test"))
    analyst.groups.add(Group.objects.get_or_create(name="security")[0])
    time_machine.move_to(timezone.now(), tick=False)
    psd2.PAYMENT_DAILY_LIMIT = Decimal("1000000.00")
    # volume: 100,000.00 of completed transfers between own accounts of another customer
    volume = services.account_open(owner=other_customer, currency="EUR", opening_balance="100000.00")
    savings = services.account_open(owner=other_customer, currency="EUR")
    for _ in range(2):
        pay(other_customer, volume, "50000.00", iban=savings.iban)
    _history(customer, account, psd2)
    time_machine.shift(timedelta(hours=2))
    ScaState.objects.filter(user=customer).update(amount_since_sca=Decimal("100.00"))
    assert sca.tra_threshold() == Decimal("500.00")
    assert pay(customer, account, "400.00").sca_exemption == "transaction_risk_analysis"

    small = [pay(customer, account, "6.00") for _ in range(2)]
    assert all(p.sca_exemption == "transaction_risk_analysis" for p in small)
    total = sca.fraud_rate().total
    assert total == Decimal("100712.00")
    services.payment_report_fraud(user=customer, payment_id=small[0].id, reason="not me")
    rate = sca.fraud_rate()
    assert rate.fraud == Decimal("6.00") and rate.total == total
    assert Decimal("0.005") < rate.percent <= Decimal("0.01")  # 6 / 100,712 = 0.0060 %
    assert sca.tra_threshold() == Decimal("250.00")
    suspended = AuditEvent.objects.get(type="payment.tra_suspended")
    assert suspended.details["bands_stopped"] == ["500.00"] and suspended.details["article"] == "RTS Art. 20"
    run_outbox()
    assert any(m.to == ["analyst@bank.test"] and "exemption stopped" in m.subject for m in mail.outbox)
    assert pay(customer, account, "400.00").sca_required  # band 500 stopped by itself
    assert pay(customer, account, "240.00").sca_exemption == "transaction_risk_analysis"

    services.payment_report_fraud(user=customer, payment_id=small[1].id, actor=analyst, reason="chargeback")
    assert sca.fraud_rate().percent > Decimal("0.01")
    assert sca.tra_threshold() == Decimal("100.00")
    assert AuditEvent.objects.filter(type="payment.tra_suspended").count() == 2
    reported = AuditEvent.objects.filter(type="payment.fraud_reported").order_by("id")
    assert [r.details["source"] for r in reported] == ["customer", "staff"]
    assert reported[1].actor_id == analyst.pk


def test_fraud_rate_window_is_rolling_90_days(
    psd2: Any, customer: User, account: BankAccount, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    payment = pay(customer, account, "10.00")
    services.payment_report_fraud(user=customer, payment_id=payment.id)
    assert sca.fraud_rate().fraud == Decimal("10.00")
    time_machine.shift(timedelta(days=91))
    assert sca.fraud_rate().total == 0 and sca.tra_threshold() == Decimal("500.00")


def test_only_a_completed_payment_of_ones_own_can_be_reported(
    api: APIClient, customer: User, account: BankAccount, other_customer: User, other_account: BankAccount
) -> None:
    theirs = pay(other_customer, other_account, "10.00")
    assert api.post(f"/api/v1/payments/{theirs.id}/report-fraud", {}, format="json").status_code == 404
    mine = pay(customer, account, "10.00")
    first = api.post(f"/api/v1/payments/{mine.id}/report-fraud", {"reason": "not me"}, format="json")
    assert first.status_code == 200 and first.json()["fraud_reported_at"]
    again = api.post(f"/api/v1/payments/{mine.id}/report-fraud", {}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "already_reported"
    assert AuditEvent.objects.filter(type="payment.fraud_reported").count() == 1


# --- Fail-safe ------------------------------------------------------------------------------------


def test_any_error_in_the_evaluation_means_sca(
    psd2: Any, monkeypatch: pytest.MonkeyPatch, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    def broken(facts: sca.PaymentFacts) -> None:
        raise RuntimeError("rule failed")

    monkeypatch.setattr(sca, "PSD2_RULES", (sca.rule_recurring, broken, sca.rule_low_value))
    payment = pay(customer, account, "1.00")
    assert_challenged(payment, "evaluation_error", "fail-safe")
    assert decision(payment).details["rules"] == ["recurring:no", "error"]


def test_a_failing_query_in_a_rule_leaves_the_payment_usable(
    psd2: Any, monkeypatch: pytest.MonkeyPatch, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    from django.db import connection

    def bad_sql(facts: sca.PaymentFacts) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(sca, "PSD2_RULES", (bad_sql,))
    payment = pay(customer, account, "1.00")
    assert payment.sca_required and Payment.objects.filter(id=payment.id, status="pending_step_up").exists()


# --- Both channels show it ------------------------------------------------------------------------


def test_api_bodies_carry_sca(
    psd2: Any, api: APIClient, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    savings = services.account_open(owner=customer, currency="EUR", name="Savings")
    own = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": savings.iban, "amount": "10.00", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sca-1",
    )
    assert own.status_code == 201
    assert own.json()["sca"] == {"required": False, "exemption": "own_accounts", "article": "RTS Art. 15"}
    new_device = api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": "10.00", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sca-2",
    )
    assert new_device.status_code == 202
    assert new_device.json()["sca"]["required"] is True and new_device.json()["sca"]["exemption"] is None
    listed = api.get("/api/v1/payments").json()
    assert {p["id"]: p["sca"]["exemption"] for p in listed} == {
        own.json()["id"]: "own_accounts",
        new_device.json()["id"]: None,
    }
    assert api.get(f"/api/v1/payments/{own.json()['id']}").json()["sca"]["exemption"] == "own_accounts"
    only = api.get("/api/v1/payments?exemption=own_accounts").json()
    assert [p["id"] for p in only] == [own.json()["id"]]


def test_the_web_shows_the_sca_decision(
    psd2: Any, client: Any, login: Callable[..., Any], customer: User, account: BankAccount
) -> None:
    savings = services.account_open(owner=customer, currency="EUR", name="Savings")
    payment = pay(customer, account, "10.00", iban=savings.iban)
    login(client, customer)
    page = client.get(f"/payments/{payment.id}/").content.decode()
    assert "No second factor needed: between your own accounts (RTS Art. 15)" in page


@pytest.mark.parametrize(
    "query",
    ["status=%00", "status=bogus", "limit=abc", "limit=0", "limit=101", "exemption=%00", "unknown=1", "limit=%00"],
)
def test_bad_query_parameters_are_a_400(api: APIClient, account: BankAccount, query: str) -> None:
    response = api.get(f"/api/v1/payments?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid" and response.json()["errors"]


def test_good_query_parameters_filter(api: APIClient, customer: User, account: BankAccount) -> None:
    pay(customer, account, "10.00")
    assert len(api.get("/api/v1/payments?status=completed&limit=1").json()) == 1
    assert api.get("/api/v1/payments?status=refused").json() == []


def test_trust_through_the_api_with_an_emailed_code_and_no_method_named(
    api: APIClient, customer: User, email_factor: Any, last_email_code: Callable[[], tuple[str, str]]
) -> None:
    beneficiary = Beneficiary.objects.create(owner=customer, name="Landlord", iban=EXTERNAL_IBAN)
    begun = api.post(f"/api/v1/beneficiaries/{beneficiary.id}/trust", {"method": "email"}, format="json")
    assert begun.status_code == 202, begun.content
    assert begun.json()["step_up"]["sent_to"] and begun.json()["step_up"]["methods"] == ["email"]
    code, text = last_email_code()
    assert "Landlord" in text and "no longer ask for a code" in text
    again = api.post(f"/api/v1/beneficiaries/{beneficiary.id}/trust/challenge", {"method": "sms"}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "method_unavailable"
    done = api.post(f"/api/v1/beneficiaries/{beneficiary.id}/trust/confirm", {"code": code}, format="json")
    assert done.status_code == 200 and done.json()["trusted"] is True
    listed = api.get("/api/v1/beneficiaries").json()
    assert listed[0]["trusted"] is True and listed[0]["trusted_at"]
    twice = api.post(f"/api/v1/beneficiaries/{beneficiary.id}/trust", {}, format="json")
    assert twice.status_code == 400 and twice.json()["code"] == "already_trusted"


def test_standing_orders_api_refuses_bad_input_and_lists_and_cancels(
    api: APIClient, customer: User, account: BankAccount, other_customer: User, email_factor: Any
) -> None:
    body = {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": "10.00", "currency": "EUR"}
    for bad, code in (
        ({**body, "frequency": "hourly"}, "invalid_frequency"),
        ({**body, "frequency": "weekly", "amount": "1.001"}, "invalid_amount"),
        ({**body, "frequency": "weekly", "currency": "USD"}, "currency_mismatch"),
        ({**body, "frequency": "weekly", "to_iban": "DE00"}, "invalid_iban"),
    ):
        refused = api.post("/api/v1/standing-orders", bad, format="json")
        assert refused.status_code == 400 and refused.json()["code"] == code, refused.content
    created = api.post("/api/v1/standing-orders", {**body, "frequency": "weekly"}, format="json").json()
    assert [o["id"] for o in api.get("/api/v1/standing-orders").json()] == [created["id"]]
    wrong = api.post(f"/api/v1/standing-orders/{created['id']}/confirm", {"code": "000000"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    assert AuditEvent.objects.filter(type="standing_order.sca_failed").count() == 1
    cancelled = api.delete(f"/api/v1/standing-orders/{created['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    gone = api.post(f"/api/v1/standing-orders/{created['id']}/confirm", {"code": "123456"}, format="json")
    assert gone.status_code == 410
    theirs = services.account_open(owner=other_customer, currency="EUR")
    assert api.get("/api/v1/standing-orders/not-a-uuid").status_code == 404
    foreign = api.post("/api/v1/standing-orders", {**body, "frequency": "weekly", "from_account": str(theirs.id)})
    assert foreign.status_code == 404
    assert not Payment.objects.exists()


def test_the_risk_score_uses_every_factor_art_18_names(
    customer: User, account: BankAccount, settings: Any, time_machine: Any
) -> None:
    """Spending pattern and history, payer location, payee location and a new payee, device,
    abnormal patterns (velocity): each adds its weight."""
    from risk.models import RiskProfile

    time_machine.move_to(timezone.now(), tick=False)
    RiskProfile.objects.create(user=customer, seen_countries=["NL"])
    state = ScaState.objects.create(user=customer)

    def facts(amount: str, iban: str = EXTERNAL_IBAN, device: str = "known", country: str = "NL") -> sca.PaymentFacts:
        return sca.PaymentFacts(
            user=customer,
            account=account,
            amount=Decimal(amount),
            currency="EUR",
            payee_iban=iban,
            payee_account=None,
            beneficiary=None,
            state=state,
            device=device,
            country=country,
        )

    score, factors = sca.risk_assessment(facts("10.00"))
    assert set(factors) == {"new_payee", "short_history", "payee_location"}
    assert score == sum(settings.SCA_TRA_WEIGHTS[f] for f in factors)
    for _ in range(3):
        pay(customer, account, "10.00")
    time_machine.shift(timedelta(hours=2))
    assert sca.risk_assessment(facts("10.00")) == (0, [])  # a known payee, pattern, place and device
    assert sca.risk_assessment(facts("10.00", device="new"))[1] == ["new_device"]
    assert sca.risk_assessment(facts("10.00", country="BR"))[1] == ["payer_location"]
    assert sca.risk_assessment(facts("51.00"))[1] == ["unusual_amount"]  # over 5 x the median of 10.00
    assert sca.risk_assessment(facts("10.00", iban=OTHER_IBAN))[1] == ["new_payee", "payee_location"]
    for _ in range(settings.SCA_TRA_VELOCITY_PER_HOUR):
        pay(customer, account, "10.00")
    assert sca.risk_assessment(facts("10.00"))[1] == ["velocity"]
