from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet, Sum

from accounts.models import User
from payments.models import BankAccount, LedgerEntry


def accounts_for_user(*, user: User) -> QuerySet[BankAccount]:
    return BankAccount.objects.filter(owner=user, kind=BankAccount.Kind.CUSTOMER, is_active=True).order_by("created_at")


def ledger_total() -> Decimal:
    """The sum of every ledger entry: zero in a consistent ledger."""
    return LedgerEntry.objects.aggregate(total=Sum("amount"))["total"] or Decimal("0")


def ledger_inconsistencies() -> list[str]:
    """Accounts whose cached balance differs from the sum of their entries, and an unbalanced ledger."""
    problems = []
    sums = dict(LedgerEntry.objects.values("account").annotate(total=Sum("amount")).values_list("account", "total"))
    for account in BankAccount.objects.all():
        expected = sums.get(account.id, Decimal("0")) or Decimal("0")
        if account.balance != expected:
            problems.append(f"{account.iban}: cached {account.balance} != ledger {expected}")
    total = ledger_total()
    if total != 0:
        problems.append(f"ledger entries sum to {total}, not 0")
    return problems
