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


class Beneficiary(models.Model):
    """A payee the customer saved (adding one needs a recent re-authentication)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="beneficiaries")
    name = models.CharField(max_length=70)
    iban = models.CharField(max_length=34)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "iban"], name="beneficiary_unique_iban_per_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.iban})"

    @property
    def iban_formatted(self) -> str:
        return " ".join(self.iban[i : i + 4] for i in range(0, len(self.iban), 4))


class Payment(models.Model):
    """A transfer from a customer's own account to a beneficiary or an IBAN.

    Payments needing a step-up are stored `pending_step_up` with `binding_digest`, a keyed
    digest of (id, source account, payee IBAN, amount, currency); confirmation recomputes it.
    """

    class Status(models.TextChoices):
        PENDING_STEP_UP = "pending_step_up", "Waiting for confirmation"
        COMPLETED = "completed", "Completed"
        REFUSED = "refused", "Refused"
        EXPIRED = "expired", "Expired"

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    from_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="payments_out")
    beneficiary = models.ForeignKey(
        Beneficiary, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    payee_name = models.CharField(max_length=70, blank=True)
    payee_iban = models.CharField(max_length=34)
    payee_account = models.ForeignKey(
        BankAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments_in",
        help_text="The credited account when the payee's IBAN is held in this bank.",
    )
    amount = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=140, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    step_up_reasons = models.JSONField(default=list, blank=True)
    binding_digest = models.CharField(max_length=64, blank=True)
    step_up_challenge_id = models.UUIDField(null=True, blank=True)
    step_up_expires_at = models.DateTimeField(null=True, blank=True)
    step_up_attempts = models.PositiveSmallIntegerField(default=0)
    step_up_method = models.CharField(max_length=16, blank=True)
    refusal_reason = models.CharField(max_length=64, blank=True)
    posting = models.OneToOneField(Posting, null=True, blank=True, on_delete=models.PROTECT, related_name="payment")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["from_account", "status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} to {self.payee_iban} ({self.status})"

    @property
    def payee_iban_formatted(self) -> str:
        return " ".join(self.payee_iban[i : i + 4] for i in range(0, len(self.payee_iban), 4))

    REFUSAL_TEXT = {
        "step_up_expired": "not confirmed in time",
        "step_up_exhausted": "too many wrong codes",
        "binding_mismatch": "the payment changed after the confirmation was requested",
        "insufficient_funds": "not enough money in the account at confirmation",
    }

    @property
    def refusal_text(self) -> str:
        return self.REFUSAL_TEXT.get(self.refusal_reason, self.refusal_reason.replace("_", " "))

    @property
    def payee_label(self) -> str:
        return f"{self.payee_name} ({self.payee_iban_formatted})" if self.payee_name else self.payee_iban_formatted


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key (API) or a one-time form token (web)."""

    id = models.BigAutoField(primary_key=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    response_status = models.PositiveSmallIntegerField(default=0)
    response_body = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_unique_key_per_owner")]

    def __str__(self) -> str:
        return f"idempotency {self.key[:12]} ({self.response_status})"
