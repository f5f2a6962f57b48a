"""The double-entry ledger: the only code that moves money between accounts."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F

from payments.models import BankAccount, LedgerEntry, Posting

CENT = Decimal("0.01")


class LedgerError(Exception):
    pass


def lock_accounts(account_ids: Sequence[object]) -> dict[str, BankAccount]:
    """SELECT ... FOR UPDATE in a fixed (id) order, so two postings never deadlock."""
    ids = sorted({str(a) for a in account_ids})
    locked = BankAccount.objects.select_for_update().filter(id__in=ids).order_by("id")
    return {str(account.id): account for account in locked}


def posting_create(
    *, kind: str, description: str, lines: Sequence[tuple[BankAccount, Decimal]], locked: bool = False
) -> Posting:
    """Writes one balanced posting. `lines` are (account, signed amount); they must sum to 0."""
    if len(lines) < 2:
        raise LedgerError("a posting needs at least two entries")
    amounts = [Decimal(amount) for _, amount in lines]
    if any(a.quantize(CENT) != a for a in amounts):
        raise LedgerError("amounts have at most two decimal places")
    if sum(amounts, Decimal("0")) != 0:
        raise LedgerError("a posting's entries must sum to zero")
    currencies = {account.currency for account, _ in lines}
    if len(currencies) != 1:
        raise LedgerError("a posting moves one currency")
    # savepoint=False: inside a payment's transaction a failed posting fails the whole payment
    # (nothing of it may commit anyway), without SAVEPOINT/RELEASE round trips per posting.
    with transaction.atomic(savepoint=False):
        accounts = (
            lock_accounts([account.id for account, _ in lines])
            if not locked
            else {str(account.id): account for account, _ in lines}
        )
        posting = Posting.objects.create(kind=kind, description=description[:140])
        entries = []
        deltas: dict[str, Decimal] = {}
        for account, amount in lines:
            current = accounts[str(account.id)]
            deltas[str(current.id)] = deltas.get(str(current.id), Decimal("0")) + amount
            current.balance = current.balance + amount
            entries.append(LedgerEntry(posting=posting, account=current, amount=amount, balance_after=current.balance))
        _balances_add(deltas)
        LedgerEntry.objects.bulk_create(entries)
    return posting


def _balances_add(deltas: dict[str, Decimal]) -> None:
    """balance += delta for each account: one UPDATE ... FROM (VALUES ...) on PostgreSQL."""
    if connection.vendor != "postgresql" or len(deltas) < 2:
        for account_id, delta in deltas.items():
            BankAccount.objects.filter(id=account_id).update(balance=F("balance") + delta)
        return
    table = BankAccount._meta.db_table
    values = ", ".join(["(%s::uuid, %s::numeric)"] * len(deltas))
    params: list[str | Decimal] = []
    for account_id, delta in deltas.items():
        params += [account_id, delta]
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table}" AS a SET "balance" = a."balance" + v.delta FROM (VALUES {values}) AS v(id, delta) '  # noqa: S608  # nosec B608 - table name from model metadata; values are parameters
            'WHERE a."id" = v.id',
            params,
        )
