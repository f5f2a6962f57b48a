"""Issue 16 item 7: the security reports show, for a period, payments by exemption and by SCA, the
fraud rate per band against the reference, and each exemption decision with its audit row; the
filters take dates from a date picker and event types from a list."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount
from tests.accounts.factories import UserFactory
from tests.audit.helpers import web_login
from tests.payments.conftest import EXTERNAL_IBAN


@pytest.fixture
def analyst_client() -> Client:
    return _analyst_client()


def _analyst_client() -> Client:
    from mfa.models import TOTPFactor

    analyst = cast(User, UserFactory(role="security", is_staff=True, email="analyst@bank.test"))
    factor = TOTPFactor(user=analyst, name="Authenticator", confirmed=True)
    factor.set_key("00" * 20)
    factor.save()
    client = Client()
    web_login(client, analyst, amr=["pwd", "otp"])
    return client


def test_payments_by_exemption_and_sca_with_their_audit_rows_and_the_fraud_rate_per_band(
    analyst_client: Client, customer: User, account: BankAccount, totp_factor: Any, settings: Any
) -> None:
    savings = services.account_open(owner=customer, currency="EUR", name="Savings")
    own = services.payment_create(
        user=customer, from_account=account.id, amount="20000.00", currency="EUR", to_iban=savings.iban
    ).payment
    small = services.payment_create(
        user=customer, from_account=account.id, amount="10.00", currency="EUR", to_iban=EXTERNAL_IBAN
    ).payment
    services.payment_create(
        user=customer, from_account=account.id, amount="10000.01", currency="EUR", to_iban=EXTERNAL_IBAN
    )
    services.payment_report_fraud(user=customer, payment_id=small.id)  # 10 / 20,010 = 0.0500 %

    body = analyst_client.get("/reports/").content.decode()
    assert "Strong customer authentication" in body
    assert "Exempt: own accounts" in body and "RTS Art. 15" in body
    assert "Below the threshold (default profile)" in body and "SCA applied" in body
    row = AuditEvent.objects.get(type="payment.sca_decided", details__payment=str(own.id))
    assert str(row.public_id) in body and str(own.id) in body  # traceable to its audit row
    assert "0.0500%" in body
    assert body.count("stopped (RTS Art. 20)") == 3  # every band's reference is below 0.05 %
    assert "Payments by SCA decision" in body  # the chart


def test_filters_are_a_date_picker_and_a_list_of_event_types(analyst_client: Client, customer: User) -> None:
    body = analyst_client.get("/reports/").content.decode()
    assert 'type="date" name="since"' in body and 'type="date" name="until"' in body
    assert '<select name="type"' in body
    assert '<option value="payment.sca_decided">' in body and '<option value="auth.">' in body
    assert 'list="event-types"' not in body


def test_a_date_range_includes_the_whole_last_day_and_the_csv_uses_the_same_range(
    customer: User, time_machine: Any
) -> None:
    from audit.events import EventType
    from audit.services import record

    day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    time_machine.move_to(day + timedelta(hours=23, minutes=59), tick=False)
    record(type=EventType.LOGIN_FAILED, user=customer)
    time_machine.move_to(day + timedelta(days=1, minutes=1), tick=False)
    record(type=EventType.LOGIN_FAILED, user=customer)
    time_machine.move_to(day + timedelta(days=5), tick=False)
    analyst_client = _analyst_client()
    date = day.strftime("%Y-%m-%d")
    page = analyst_client.get("/reports/", {"since": date, "until": date, "type": "auth.login_failed"})
    assert page.status_code == 200 and "Events (1)" in page.content.decode()
    csv = analyst_client.get("/reports/events.csv", {"since": date, "until": date, "type": "auth.login_failed"})
    lines = b"".join(csv.streaming_content).decode().strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 2  # header and the one event
    bad = analyst_client.get("/reports/", {"type": "auth.login_faild"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()


def test_the_fraud_rate_of_the_report_matches_the_payments_app(
    customer: User, account: BankAccount, other_customer: User, settings: Any
) -> None:
    from audit.forms import EventFilters
    from audit.selectors import sca_report
    from payments import sca

    payments = [
        services.payment_create(
            user=customer, from_account=account.id, amount=amount, currency="EUR", to_iban=EXTERNAL_IBAN
        ).payment
        for amount in ("100.00", "250.00", "4000.00")
    ]
    services.payment_report_fraud(user=customer, payment_id=payments[0].id)
    report = sca_report(filters=EventFilters(since=timezone.now() - timedelta(days=1)))
    assert report["rate"].fraud == sca.fraud_rate().fraud == Decimal("100.00")
    assert report["rate"].total == sca.fraud_rate().total == Decimal("4350.00")
    assert report["rate"].percent == sca.fraud_rate().percent
