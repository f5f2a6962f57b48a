from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

MONEY_DIGITS = 18
MONEY_PLACES = 2


class LedgerImmutableError(Exception):
    """Ledger entries and postings are never changed or removed."""


class BankAccount(models.Model):
    """A customer's account, or one of the bank's own (funding, clearing).

    `balance` is a cache of the sum of its ledger entries, written in the same transaction
    as each posting under a row lock; `payments.selectors.ledger_inconsistencies` checks it.
    """

    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer account"
        FUNDING = "funding", "Bank funding account"
        CLEARING = "clearing", "Outgoing clearing account"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="bank_accounts"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOMER)
    iban = models.CharField(max_length=34, unique=True)
    name = models.CharField(max_length=80)
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(default=Decimal("0.00"), max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    created_at = models.DateTimeField(default=timezone.now)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.iban})"

    @property
    def iban_formatted(self) -> str:
        return " ".join(self.iban[i : i + 4] for i in range(0, len(self.iban), 4))


class Posting(models.Model):
    """One balanced movement of money: its entries sum to zero."""

    class Kind(models.TextChoices):
        OPENING = "opening", "Opening balance"
        PAYMENT = "payment", "Payment"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=140)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.description}"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise LedgerImmutableError("postings are append-only")


class LedgerEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    posting = models.ForeignKey(Posting, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
        help_text="Positive credits the account, negative debits it.",
    )
    balance_after = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.amount} on {self.account_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerImmutableError("ledger entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise LedgerImmutableError("ledger entries are append-only")
