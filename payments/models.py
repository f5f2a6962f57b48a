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
    # The bank's own accounts come in numbered sub-accounts: the clearing account of a currency is
    # PAYMENT_CLEARING_SHARDS ordinary ledger accounts (0..N-1) so that concurrent payments to other
    # banks do not queue on one row; reports sum them (payments.selectors.internal_balance).
    # Customer accounts keep 0 (also the database's default, for rows written in SQL: bench/scale.py).
    shard = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "currency", "shard"],
                condition=models.Q(owner__isnull=True),
                name="bank_internal_account_unique_shard",
            )
        ]

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
    # RTS Art. 13: trust is given to one IBAN with SCA; any other IBAN is not trusted.
    trusted_at = models.DateTimeField(null=True, blank=True)
    trusted_iban = models.CharField(max_length=34, blank=True)
    trust_challenge_id = models.UUIDField(null=True, blank=True)
    trust_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "iban"], name="beneficiary_unique_iban_per_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.iban})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Changing the IBAN drops the trust (it was given to the old IBAN), however it is changed."""
        if self.trusted_iban and self.trusted_iban != self.iban:
            self.trusted_at = None
            self.trusted_iban = ""
            fields = kwargs.get("update_fields")
            if fields is not None:
                kwargs["update_fields"] = {*fields, "trusted_at", "trusted_iban"}
        super().save(*args, **kwargs)

    @property
    def is_trusted(self) -> bool:
        return self.trusted_at is not None and bool(self.trusted_iban) and self.trusted_iban == self.iban

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
        STANDING_ORDER = "standing", "Standing order"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column indexes on owner and from_account: the composite indexes below lead with them.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    from_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="payments_out", db_index=False)
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
    status = models.CharField(max_length=20, choices=Status.choices)  # indexed below (no LIKE index)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    step_up_reasons = models.JSONField(default=list, blank=True)
    binding_digest = models.CharField(max_length=64, blank=True)
    step_up_challenge_id = models.UUIDField(null=True, blank=True)
    step_up_expires_at = models.DateTimeField(null=True, blank=True)
    step_up_attempts = models.PositiveSmallIntegerField(default=0)
    step_up_method = models.CharField(max_length=16, blank=True)
    refusal_reason = models.CharField(max_length=64, blank=True)
    # The SCA decision of payments/sca.py: required or the RTS exemption (and article) that lifted it.
    sca_required = models.BooleanField(default=True)
    sca_exemption = models.CharField(max_length=32, blank=True)
    sca_article = models.CharField(max_length=32, blank=True)
    risk_score = models.PositiveSmallIntegerField(null=True, blank=True)
    standing_order = models.ForeignKey(
        "StandingOrder", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    # Reported as unauthorised ("this wasn't me" or staff): counts in the fraud rate (RTS Art. 19).
    fraud_reported_at = models.DateTimeField(null=True, blank=True, db_index=True)
    fraud_reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    posting = models.OneToOneField(Posting, null=True, blank=True, on_delete=models.PROTECT, related_name="payment")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # What a payment's SCA facts read (payments.sca.facts_query), each an index-only scan of the
        # rows it needs, so a payment's cost does not grow with the customer's history: the day's
        # total of the account (and its last amounts), the window's total without SCA, and
        # whether this payee was paid before (one probe).
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status"], name="payment_status_idx"),
            models.Index(
                fields=["from_account", "status", "created_at"], include=["amount"], name="payment_account_day_idx"
            ),
            models.Index(
                fields=["owner", "sca_required", "created_at"],
                include=["status", "currency", "sca_exemption", "amount"],
                name="payment_owner_window_idx",
            ),
            models.Index(fields=["owner", "payee_iban", "status"], name="payment_owner_payee_idx"),
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

    EXEMPTION_TEXT = {
        "own_accounts": "between your own accounts (RTS Art. 15)",
        "trusted_beneficiary": "to a beneficiary you trusted (RTS Art. 13)",
        "recurring": "a standing order you confirmed (RTS Art. 14)",
        "low_value": "a low-value payment (RTS Art. 16)",
        "transaction_risk_analysis": "low risk by our transaction risk analysis (RTS Art. 18)",
    }

    @property
    def sca_text(self) -> str:
        """What the customer is told about strong customer authentication for this payment."""
        if self.sca_required:
            return "Confirmed with a second factor" if self.step_up_method else "Needs a second factor"
        if self.sca_exemption:
            return f"No second factor needed: {self.EXEMPTION_TEXT.get(self.sca_exemption, self.sca_exemption)}"
        return "No second factor needed (below the confirmation threshold)"

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


class ScaState(models.Model):
    """Per customer: when SCA was last applied to a payment, and what went out without it since
    (RTS Art. 16 counters). Locked (SELECT ... FOR UPDATE) by every payment of the customer, so
    concurrent payments read and move the counters one after the other; reset at each SCA."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="sca_state"
    )
    last_sca_at = models.DateTimeField(null=True, blank=True)
    amount_since_sca = models.DecimalField(
        default=Decimal("0.00"), max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES
    )
    count_since_sca = models.PositiveIntegerField(default=0)
    # RTS Art. 10: when the customer last accessed their accounts with SCA (a second-factor session).
    account_sca_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"SCA state of {self.user_id}"


class StandingOrder(models.Model):
    """A series of payments with the same amount and payee (RTS Art. 14): SCA when created or
    changed (its first execution runs at that confirmation); later executions run from Celery beat."""

    class Status(models.TextChoices):
        PENDING_SCA = "pending_sca", "Waiting for confirmation"
        ACTIVE = "active", "Active"
        CANCELLED = "cancelled", "Cancelled"

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", "Every week"
        MONTHLY = "monthly", "Every month"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="standing_orders")
    from_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="standing_orders")
    beneficiary = models.ForeignKey(
        Beneficiary, null=True, blank=True, on_delete=models.SET_NULL, related_name="standing_orders"
    )
    payee_name = models.CharField(max_length=70, blank=True)
    payee_iban = models.CharField(max_length=34)
    amount = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=140, blank=True)
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.MONTHLY)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # What the last SCA authorised (keyed digest of account, payee, amount, currency, frequency).
    authorised_digest = models.CharField(max_length=64, blank=True)
    authorised_at = models.DateTimeField(null=True, blank=True)
    sca_challenge_id = models.UUIDField(null=True, blank=True)
    sca_expires_at = models.DateTimeField(null=True, blank=True)
    executions = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} {self.frequency} to {self.payee_iban} ({self.status})"

    @property
    def payee_iban_formatted(self) -> str:
        return " ".join(self.payee_iban[i : i + 4] for i in range(0, len(self.payee_iban), 4))


class FraudMonitor(models.Model):
    """The one row remembering the transaction-risk-analysis threshold last allowed by the fraud
    rate, so that the security team is told once when the exemption stops (RTS Art. 20)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    allowed_threshold = models.DecimalField(null=True, blank=True, max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    measured_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"TRA threshold {self.allowed_threshold}"
