"""What one API payment costs in SQL statements (issue 15; bench/ prints the same census under load).

Counted with Django's CaptureQueriesContext around the request, inside the test's transaction, so
the request's own transaction shows as SAVEPOINT/RELEASE (in production BEGIN/COMMIT, which the
census does not see). A payment that goes out at once, to a customer of the bank or to another bank:
the key claimed, the SCA state locked, the accounts locked together with the facts the SCA rules
read, and one statement for the payment, the posting, the balances, the entries, the SCA counters,
the idempotency record and the three audit rows: 4 statements plus the savepoint pair (it was 28,
then 7 with an INSERT per audit row). A regression here is a slower payment for every customer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Payment
from tests.payments.conftest import EXTERNAL_IBAN

BUDGET = 6  # 4 statements + SAVEPOINT/RELEASE


def _pay(api: APIClient, account: BankAccount, iban: str, key: str) -> Any:
    return api.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": iban, "amount": "1.00", "currency": "EUR", "reference": "r"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@pytest.mark.parametrize("payee", ["internal", "external"])
def test_a_payment_costs_at_most_6_statements(
    payee: str, api: APIClient, customer: User, account: BankAccount, other_account: BankAccount
) -> None:
    iban = other_account.iban if payee == "internal" else EXTERNAL_IBAN
    for i in range(3):  # a customer who paid before: the steady state
        assert _pay(api, account, iban, f"warm-{i}").status_code == 201
    events_before = AuditEvent.objects.count()
    with CaptureQueriesContext(connection) as captured:
        response = _pay(api, account, iban, "measured")
    sql = [q["sql"] for q in captured.captured_queries]
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "completed"
    assert len(sql) <= BUDGET, "\n".join(sql)
    # nothing dropped on the way: the audit rows, the posting, the SCA counters, the idempotency answer
    assert AuditEvent.objects.count() - events_before == 3
    payment = Payment.objects.get(id=response.json()["id"])
    assert payment.posting is not None and payment.posting.entries.count() == 2
    assert sum(e.amount for e in payment.posting.entries.all()) == Decimal("0.00")
    replay = _pay(api, account, iban, "measured")
    assert replay.status_code == 201 and replay.json() == response.json() and replay["Idempotent-Replayed"] == "true"
    state = services.ScaState.objects.get(user=customer)
    assert state.count_since_sca == 4


def test_a_payment_needing_step_up_costs_no_more(
    api: APIClient, customer: User, account: BankAccount, totp_factor: Any
) -> None:
    assert _pay(api, account, EXTERNAL_IBAN, "warm").status_code == 201
    with CaptureQueriesContext(connection) as captured:
        response = api.post(
            "/api/v1/payments",
            {"from_account": str(account.id), "to_iban": EXTERNAL_IBAN, "amount": "10001.00", "currency": "EUR"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="big",
        )
    sql = [q["sql"] for q in captured.captured_queries]
    assert response.status_code == 202 and response.json()["status"] == "pending_step_up"
    assert len(sql) <= BUDGET + 1, "\n".join(sql)  # + the factor methods for the answer
