from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Payment, ScaState
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


def _parallel(n: int, work: Callable[[int], str]) -> list[str]:
    start = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            start.wait()
            outcome = work(i)
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    connections.close_all()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_low_value_payments_crossing_100_are_challenged_exactly_beyond_it(
    customer: User, settings: Any
) -> None:
    """Art. 16 counters under concurrency: 12 payments of 15.00 at once; the cumulative amount
    since the last SCA may reach 100.00, so exactly 6 (90.00) go out and exactly 6 are challenged."""
    from mfa.models import TOTPFactor

    settings.SECURITY_PROFILE = "psd2"
    settings.SCA_TRA_BANDS = []  # Art. 16 alone
    settings.SCA_LOW_VALUE_COUNTERS = "amount"
    settings.SCA_HIGH_RISK_SCORE = 1000
    factor = TOTPFactor(user=customer, name="app", confirmed=True)
    factor.set_key("3132333435363738393031323334353637383930")
    factor.save()
    account = services.account_open(owner=customer, currency="EUR", opening_balance="1000.00")
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")

    def work(i: int) -> str:
        outcome = services.payment_create(
            user=customer,
            from_account=account.id,
            amount="15.00",
            currency="EUR",
            to_iban=EXTERNAL_IBAN,
            channel="api",
            idempotency_key=f"low-{i}",
            body_hash=str(i),
            payer=services.PayerContext(device="known"),
        )
        return outcome.payment.status

    results = _parallel(12, work)
    assert sorted(results) == ["completed"] * 6 + ["pending_step_up"] * 6
    state = ScaState.objects.get(user=customer)
    assert (state.amount_since_sca, state.count_since_sca) == (Decimal("90.00"), 6)
    completed = Payment.objects.filter(status="completed")
    assert {p.sca_exemption for p in completed} == {"low_value"}
    # the challenged ones are exactly the six decided after the sixth exempt one
    exempt_rows = AuditEvent.objects.filter(type="payment.sca_decided", reason="low_value").count()
    assert exempt_rows == 6
    account.refresh_from_db()
    assert account.balance == Decimal("910.00")


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_cannot_split_past_the_threshold(customer: User) -> None:
    """Default profile: 8 payments of 2,000.00 at once; with the threshold of 10,000.00 counted
    over the payments since the last SCA, exactly 5 go out without a second factor."""
    from mfa.models import TOTPFactor

    factor = TOTPFactor(user=customer, name="app", confirmed=True)
    factor.set_key("3132333435363738393031323334353637383930")
    factor.save()
    account = services.account_open(owner=customer, currency="EUR", opening_balance="20000.00")
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")

    def work(i: int) -> str:
        outcome = services.payment_create(
            user=customer,
            from_account=account.id,
            amount="2000.00",
            currency="EUR",
            to_iban=EXTERNAL_IBAN,
            channel="api",
            idempotency_key=f"split-{i}",
            body_hash=str(i),
        )
        return outcome.payment.status

    results = _parallel(8, work)
    assert sorted(results) == ["completed"] * 5 + ["pending_step_up"] * 3
    pending = Payment.objects.filter(status="pending_step_up")
    assert all(p.step_up_reasons == ["cumulative_above_threshold"] for p in pending)
    account.refresh_from_db()
    assert account.balance == Decimal("10000.00")
