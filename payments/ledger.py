"""The double-entry ledger: the only code that moves money between accounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from payments import cache as account_lists
from payments.models import BankAccount, LedgerEntry, Posting

CENT = Decimal("0.01")


class LedgerError(Exception):
    pass


def lock_accounts(account_ids: Sequence[object]) -> dict[str, BankAccount]:
    """SELECT ... FOR UPDATE in a fixed (id) order, so two postings never deadlock."""
    ids = sorted({str(a) for a in account_ids})
    locked = BankAccount.objects.select_for_update().filter(id__in=ids).order_by("id")
    return {str(account.id): account for account in locked}


def _check_balanced(amounts: Sequence[Decimal], currencies: set[str]) -> None:
    """The invariants of every posting: two entries or more, cents, summing to zero, one currency."""
    if len(amounts) < 2:
        raise LedgerError("a posting needs at least two entries")
    if any(a.quantize(CENT) != a for a in amounts):
        raise LedgerError("amounts have at most two decimal places")
    if sum(amounts, Decimal("0")) != 0:
        raise LedgerError("a posting's entries must sum to zero")
    if len(currencies) != 1:
        raise LedgerError("a posting moves one currency")


def posting_create(
    *, kind: str, description: str, lines: Sequence[tuple[BankAccount, Decimal]], locked: bool = False
) -> Posting:
    """Writes one balanced posting. `lines` are (account, signed amount); they must sum to 0."""
    amounts = [Decimal(amount) for _, amount in lines]
    _check_balanced(amounts, {account.currency for account, _ in lines})
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
        account_lists.balances_changed(accounts[key].owner_id for key in deltas)
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


def posting_execute(
    *,
    kind: str,
    description: str,
    currency: str,
    lines: Sequence[tuple[object, Decimal]],
    created_at: datetime,
    posting_id: uuid.UUID | None = None,
    before: Sequence[tuple[str, Sequence[Any]]] = (),
    after: Sequence[tuple[str, Sequence[Any]]] = (),
) -> uuid.UUID:
    """Writes one balanced posting in ONE statement: the posting, every balance (`UPDATE ...
    RETURNING` the new balance, which is each entry's `balance_after`) and the entries.

    `lines` are (account id, signed amount) on distinct accounts of `currency`. An account the
    caller has not locked (the clearing sub-account of an external payment) is locked by this
    UPDATE, so it stays locked only from here to the commit. `before` / `after` are more
    data-modifying statements (SQL, params) run in the same statement as CTEs (the payment
    row, the customer's SCA counters, the idempotency record): one round trip for all of it.
    Raises LedgerError, and nothing of the posting is kept, unless every entry was written.
    Other databases (dev SQLite) take the ORM path: `before`/`after` must then be empty.
    """
    amounts = [Decimal(amount) for _, amount in lines]
    _check_balanced(amounts, {currency})
    ids = [str(account_id) for account_id, _ in lines]
    if len(set(ids)) != len(ids):
        raise LedgerError("a posting's entries are on distinct accounts")
    posting_id = posting_id or uuid.uuid4()
    if connection.vendor != "postgresql":
        if before or after:
            raise LedgerError("statements joined to a posting need PostgreSQL")
        locked = lock_accounts(ids)
        if len(locked) != len(ids) or {a.currency for a in locked.values()} != {currency}:
            raise LedgerError("an account of the posting is missing or holds another currency")
        with transaction.atomic(savepoint=False):
            posting = Posting.objects.create(
                id=posting_id, kind=kind, description=description[:140], created_at=created_at
            )
            entries = []
            for account_id, amount in zip(ids, amounts, strict=True):
                account = locked[account_id]
                account.balance = account.balance + amount
                entries.append(
                    LedgerEntry(
                        posting=posting,
                        account=account,
                        amount=amount,
                        balance_after=account.balance,
                        created_at=created_at,
                    )
                )
            _balances_add(dict(zip(ids, amounts, strict=True)))
            LedgerEntry.objects.bulk_create(entries)
            account_lists.balances_changed(account.owner_id for account in locked.values())
        return posting_id
    account_t, posting_t, entry_t = BankAccount._meta.db_table, Posting._meta.db_table, LedgerEntry._meta.db_table
    ctes: list[str] = []
    params: list[Any] = []
    for n, (sql, extra) in enumerate(before):
        ctes.append(f"b{n} AS ({sql})")
        params += extra
    ctes.append("v(id, delta) AS (VALUES " + ", ".join(["(%s::uuid, %s::numeric)"] * len(lines)) + ")")
    for account_id, amount in zip(ids, amounts, strict=True):
        params += [account_id, amount]
    # nosec B608 below: table names come from model metadata; every value is a parameter.
    ctes.append(
        f'u AS (UPDATE "{account_t}" AS a SET "balance" = a."balance" + v.delta FROM v '  # noqa: S608  # nosec B608
        'WHERE a."id" = v.id AND a."currency" = %s RETURNING a."id", a."balance", a."owner_id")'
    )
    params.append(currency)
    ctes.append(
        f'p AS (INSERT INTO "{posting_t}" ("id", "kind", "description", "created_at") '  # noqa: S608  # nosec B608
        "VALUES (%s, %s, %s, %s) RETURNING id)"
    )
    params += [posting_id, kind, description[:140], created_at]
    ctes.append(
        f'e AS (INSERT INTO "{entry_t}" ("posting_id", "account_id", "amount", "balance_after", "created_at") '  # noqa: S608  # nosec B608
        "SELECT p.id, u.id, v.delta, u.balance, %s FROM u JOIN v ON v.id = u.id CROSS JOIN p RETURNING 1)"
    )
    params.append(created_at)
    for n, (sql, extra) in enumerate(after):
        ctes.append(f"x{n} AS ({sql})")
        params += extra
    with connection.cursor() as cursor:
        # The entries written, and the owners of the accounts moved (their cached account lists).
        written = " SELECT (SELECT count(*) FROM e), (SELECT array_agg(u.owner_id) FROM u WHERE u.owner_id IS NOT NULL)"
        sql = "WITH " + ", ".join(ctes) + written  # nosec B608
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None or int(row[0]) != len(lines):
        raise LedgerError("an account of the posting is missing or holds another currency")
    account_lists.balances_changed(row[1] or ())
    return posting_id
