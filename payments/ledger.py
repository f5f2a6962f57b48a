"""The double-entry ledger: the only code that moves money between accounts."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction
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
    with transaction.atomic():
        accounts = (
            lock_accounts([account.id for account, _ in lines])
            if not locked
            else {str(account.id): account for account, _ in lines}
        )
        posting = Posting.objects.create(kind=kind, description=description[:140])
        entries = []
        for account, amount in lines:
            current = accounts[str(account.id)]
            BankAccount.objects.filter(id=current.id).update(balance=F("balance") + amount)
            current.balance = current.balance + amount
            entries.append(LedgerEntry(posting=posting, account=current, amount=amount, balance_after=current.balance))
        LedgerEntry.objects.bulk_create(entries)
    return posting
