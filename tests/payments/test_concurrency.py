from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from accounts.models import User
from payments import services
from payments.models import BankAccount, Payment
from tests.payments.conftest import EXTERNAL_IBAN


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_payments_never_overdraw(customer: User) -> None:
    account = services.account_open(owner=customer, currency="EUR", opening_balance="1000.00")
    other = services.account_open(owner=customer, currency="EUR")
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")
    start = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            start.wait()
            try:
                services.payment_create(
                    user=customer,
                    from_account=account.id,
                    amount="150.00",
                    currency="EUR",
                    to_iban=other.iban if i % 2 else EXTERNAL_IBAN,
                    channel="api",
                    idempotency_key=f"thread-{i}",
                    body_hash=str(i),
                )
                outcome = "ok"
            except services.PaymentError as exc:
                outcome = exc.code
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    connections.close_all()

    assert len(results) == 20
    assert results.count("ok") == 6  # 6 x 150 = 900 <= 1000 < 7 x 150
    assert results.count("insufficient_funds") == 14
    account.refresh_from_db()
    assert account.balance == Decimal("100.00")
    assert account.balance >= 0
    assert Payment.objects.filter(from_account=account, status="completed").count() == 6


@pytest.mark.django_db(transaction=True)
def test_same_idempotency_key_in_parallel_makes_one_payment(customer: User) -> None:
    account = services.account_open(owner=customer, currency="EUR", opening_balance="1000.00")
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")
    start = threading.Barrier(8)
    outcomes: list[tuple[str, int, bool]] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            start.wait()
            outcome = services.payment_create(
                user=customer,
                from_account=account.id,
                amount="10.00",
                currency="EUR",
                to_iban=EXTERNAL_IBAN,
                channel="api",
                idempotency_key="one-key",
                body_hash="same-body",
            )
            with lock:
                outcomes.append((str(outcome.payment.id), 202 if outcome.needs_step_up else 201, outcome.replayed))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    connections.close_all()

    assert len(outcomes) == 8
    assert len({payment_id for payment_id, _, _ in outcomes}) == 1
    assert {status for _, status, _ in outcomes} == {201}
    assert sum(1 for *_, replayed in outcomes if not replayed) == 1
    assert Payment.objects.count() == 1
    account.refresh_from_db()
    assert account.balance == Decimal("990.00")
