"""The clearing account of payments to other banks: sub-accounts, locked only for the posting.

Every payment to another bank credits the bank's clearing account. One row for all of them would
be locked by every such payment for its whole transaction, so they would queue on it. It is
PAYMENT_CLEARING_SHARDS ordinary ledger accounts per currency instead (one chosen by the payment's
id), and each is locked only by the payment's last statement (the posting), until the commit.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any, cast

import pytest
from django.db import OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, LedgerEntry, Payment
from payments.selectors import internal_balance, internal_balances, ledger_inconsistencies
from tests.accounts.factories import UserFactory
from tests.payments.conftest import EXTERNAL_IBAN

CLEARING = BankAccount.Kind.CLEARING


def _pay(user: User, account: BankAccount, amount: str, key: str) -> Payment:
    return services.payment_create(
        user=user,
        from_account=account.id,
        amount=amount,
        currency="EUR",
        to_iban=EXTERNAL_IBAN,
        channel="api",
        idempotency_key=key,
        body_hash=key,
    ).payment


def test_external_payments_spread_over_the_clearing_sub_accounts_and_the_reports_sum_them(
    customer: User, account: BankAccount, settings: Any
) -> None:
    settings.PAYMENT_CLEARING_SHARDS = 4
    paid = [_pay(customer, account, "10.00", f"spread-{i}") for i in range(24)]
    assert {p.status for p in paid} == {"completed"}
    shards = list(BankAccount.objects.filter(kind=CLEARING, currency="EUR", owner__isnull=True).order_by("shard"))
    assert [a.shard for a in shards] == [0, 1, 2, 3]  # all opened at the first use
    assert len({a.iban for a in shards}) == 4
    for payment in paid:  # each credited the sub-account its id chooses, through the ledger
        credit = LedgerEntry.objects.get(posting=payment.posting, amount__gt=0)
        assert credit.account.shard == services.clearing_shard(payment.id)
        assert credit.amount == Decimal("10.00")
    assert sum(1 for a in shards if a.balance > 0) > 1
    assert internal_balance(kind=CLEARING, currency="EUR") == Decimal("240.00")
    assert internal_balances()[(CLEARING, "EUR")] == Decimal("240.00")
    assert sum(a.balance for a in shards) == Decimal("240.00")
    account.refresh_from_db()
    assert account.balance == Decimal("50000.00") - Decimal("240.00")
    assert ledger_inconsistencies() == []


def test_more_sub_accounts_later_keep_the_old_ones_summed(customer: User, account: BankAccount, settings: Any) -> None:
    settings.PAYMENT_CLEARING_SHARDS = 1
    _pay(customer, account, "5.00", "one-1")
    settings.PAYMENT_CLEARING_SHARDS = 3
    for i in range(6):
        _pay(customer, account, "5.00", f"three-{i}")
    assert BankAccount.objects.filter(kind=CLEARING, currency="EUR").count() == 3
    assert internal_balance(kind=CLEARING, currency="EUR") == Decimal("35.00")


def test_a_confirmed_step_up_payment_credits_its_own_sub_account(
    customer: User, account: BankAccount, totp_factor: Any, totp_now: Any, settings: Any
) -> None:
    settings.PAYMENT_CLEARING_SHARDS = 8
    outcome = services.payment_create(
        user=customer,
        from_account=account.id,
        amount="12000.00",
        currency="EUR",
        to_iban=EXTERNAL_IBAN,
        channel="api",
        idempotency_key="big",
        body_hash="big",
    )
    assert outcome.needs_step_up
    payment = services.payment_confirm(user=customer, payment_id=outcome.payment.id, method="totp", code=totp_now())
    assert payment.status == "completed" and payment.posting_id is not None
    credit = LedgerEntry.objects.get(posting_id=payment.posting_id, amount__gt=0)
    assert credit.account.kind == CLEARING and credit.account.shard == services.clearing_shard(payment.id)
    assert internal_balance(kind=CLEARING, currency="EUR") == Decimal("12000.00")


def _run(n: int, work: Any) -> list[Any]:
    start = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            start.wait()
            try:
                out: Any = work(i)
            except Exception as exc:  # a failure is a result the test looks at
                out = exc
            with lock:
                results.append(out)
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
def test_concurrent_external_payments_of_many_customers_keep_the_ledger_exact(settings: Any) -> None:
    settings.PAYMENT_CLEARING_SHARDS = 4
    payers: list[tuple[User, BankAccount]] = []
    for _ in range(12):
        user = cast(User, UserFactory())
        payers.append((user, services.account_open(owner=user, currency="EUR", opening_balance="100.00")))
    services.clearing_account(currency="EUR", payment_id=uuid.uuid4())  # opens the sub-accounts

    def work(i: int) -> str:
        user, account = payers[i]
        done = []
        for j in range(3):
            done.append(_pay(user, account, "7.00", f"c-{i}-{j}").status)
        return ",".join(done)

    results = _run(12, work)
    assert results == ["completed,completed,completed"] * 12, results
    assert Payment.objects.filter(status="completed").count() == 36
    assert internal_balance(kind=CLEARING, currency="EUR") == Decimal("252.00")
    for _user, account in payers:
        account.refresh_from_db()
        assert account.balance == Decimal("79.00")
    assert ledger_inconsistencies() == []


@pytest.mark.django_db(transaction=True)
def test_the_clearing_sub_account_is_locked_only_by_the_last_statement(customer: User, settings: Any) -> None:
    """A payment whose clearing sub-account is locked elsewhere runs through its checks and its SCA
    decision and waits only at the posting (its last statement, which also writes its audit rows):
    with a lock timeout, that is the statement that fails, and nothing of the payment is kept."""
    settings.PAYMENT_CLEARING_SHARDS = 1
    account = services.account_open(owner=customer, currency="EUR", opening_balance="100.00")
    clearing = services.clearing_account(currency="EUR", payment_id=uuid.uuid4())
    holder = connections.create_connection("default")
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute("SELECT 1 FROM payments_bankaccount WHERE id = %s FOR UPDATE", [clearing.id])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        with CaptureQueriesContext(connection) as captured, pytest.raises(OperationalError):
            _pay(customer, account, "9.00", "held")
        sql = [q["sql"] for q in captured.captured_queries if q["sql"] not in ("ROLLBACK", "COMMIT")]
        assert sql[-1].startswith('WITH b0 AS (INSERT INTO "payments_payment"'), sql[-1]
        assert "payments_ledgerentry" in sql[-1] and "FOR UPDATE" not in sql[-1]
        # the audit rows are written by that same last statement, after everything else was decided
        assert sql[-1].count('INTO "audit_auditevent"') == 1 and not any("audit_auditevent" in q for q in sql[:-1])
        assert not any(str(clearing.id).replace("-", "") in q.replace("-", "") for q in sql[:-1] if "FOR UPDATE" in q)
        assert not Payment.objects.exists()  # rolled back whole, with its audit rows
        assert not AuditEvent.objects.filter(
            type__in=["payment.created", "payment.sca_decided", "payment.completed"]
        ).exists()
        holder.rollback()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
        assert _pay(customer, account, "9.00", "held").status == "completed"
    finally:
        holder.close()
    clearing.refresh_from_db()
    assert clearing.balance == Decimal("9.00")
    assert ledger_inconsistencies() == []


@pytest.mark.django_db(transaction=True)
def test_the_migration_numbers_existing_internal_accounts() -> None:
    """0006 on a database where a race had opened two clearing accounts of one currency: they
    become sub-accounts 0 and 1 (in creation order, balances kept), and a third one is refused."""
    from django.core.management import call_command
    from django.db import IntegrityError, transaction

    try:
        call_command("migrate", "payments", "0005", verbosity=0)
        with connection.cursor() as cursor:
            for n, (iban, balance) in enumerate([("NL00BKPT0000000901", "5.00"), ("NL00BKPT0000000902", "7.00")]):
                cursor.execute(
                    "INSERT INTO payments_bankaccount (id, owner_id, kind, iban, name, currency, balance, created_at,"
                    " is_active) VALUES (%s, NULL, 'clearing', %s, 'Bank clearing EUR', 'EUR', %s,"
                    " now() - make_interval(mins => %s), true)",
                    [uuid.uuid4(), iban, balance, 10 - n],
                )
        call_command("migrate", "payments", verbosity=0)
        rows = list(
            BankAccount.objects.filter(kind=CLEARING, currency="EUR").order_by("shard").values_list("iban", "shard")
        )
        assert rows == [("NL00BKPT0000000901", 0), ("NL00BKPT0000000902", 1)]
        assert internal_balance(kind=CLEARING, currency="EUR") == Decimal("12.00")
        with connection.cursor() as cursor:  # rows written in SQL without the column (bench/scale.py) get 0
            cursor.execute(
                "INSERT INTO payments_bankaccount (id, kind, iban, name, currency, balance, created_at, is_active)"
                " VALUES (%s, 'funding', 'NL00BKPT0000000904', 'Bank funding EUR', 'EUR', 0, now(), true)",
                [uuid.uuid4()],
            )
        assert BankAccount.objects.get(iban="NL00BKPT0000000904").shard == 0
        with pytest.raises(IntegrityError), transaction.atomic():
            BankAccount.objects.create(kind=CLEARING, currency="EUR", name="again", iban="NL00BKPT0000000903", shard=1)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM payments_bankaccount WHERE iban LIKE 'NL00BKPT00000009%%'")
        call_command("migrate", "payments", verbosity=0)
