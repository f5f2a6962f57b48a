"""Bank accounts and money movement. Payments, beneficiaries and step-up live here too."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from schwifty import IBAN

from accounts.models import User
from audit.events import EventType
from audit.services import record
from payments.ledger import CENT, posting_create
from payments.models import BankAccount, Posting


class PaymentError(Exception):
    """A refusal with a message safe to show the customer."""


def _next_iban() -> str:
    """A new IBAN of this bank, with valid check digits computed by schwifty."""
    for _ in range(20):
        last = BankAccount.objects.filter(iban__startswith=settings.BANK_IBAN_COUNTRY).count()
        number = str(last + 1).zfill(settings.BANK_ACCOUNT_NUMBER_DIGITS)
        iban = IBAN.generate(settings.BANK_IBAN_COUNTRY, bank_code=settings.BANK_CODE, account_code=number)
        if not BankAccount.objects.filter(iban=str(iban)).exists():
            return str(iban)
    raise PaymentError("could not allocate an IBAN")


def internal_account(*, kind: BankAccount.Kind, currency: str) -> BankAccount:
    """The bank's own funding or clearing account for a currency (created on first use)."""
    existing = BankAccount.objects.filter(kind=kind, currency=currency, owner__isnull=True).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return BankAccount.objects.create(
                kind=kind, currency=currency, name=f"Bank {kind.label} {currency}", iban=_next_iban()
            )
    except IntegrityError:
        return BankAccount.objects.get(kind=kind, currency=currency, owner__isnull=True)


def parse_amount(raw: object) -> Decimal:
    """A positive amount with at most two decimals, from a decimal string. Never a float."""
    if isinstance(raw, (float, bool)):
        raise PaymentError('Send the amount as a decimal string, e.g. "10.50".')
    text = str(raw).strip()
    if not text or len(text) > 20:
        raise PaymentError("Enter a valid amount.")
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError) as exc:
        raise PaymentError("Enter a valid amount.") from exc
    if not amount.is_finite() or "e" in text.lower():
        raise PaymentError("Enter a valid amount.")
    if amount <= 0:
        raise PaymentError("The amount must be more than zero.")
    if amount.quantize(CENT) != amount:
        raise PaymentError("The amount can have at most two decimal places.")
    if amount >= Decimal("10") ** 15:
        raise PaymentError("The amount is too large.")
    return amount.quantize(CENT)


def account_open(
    *,
    owner: User,
    currency: str,
    name: str = "",
    opening_balance: Decimal | str = Decimal("0.00"),
    actor: User | None = None,
) -> BankAccount:
    """Opens a customer account and funds it from the bank's funding account through the ledger."""
    currency = currency.strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise PaymentError("Currency must be an ISO 4217 code such as EUR.")
    opening = Decimal("0.00") if str(opening_balance) in ("", "0", "0.00") else parse_amount(opening_balance)
    with transaction.atomic():
        account = BankAccount.objects.create(
            owner=owner,
            kind=BankAccount.Kind.CUSTOMER,
            currency=currency,
            name=(name or f"{currency} current account")[:80],
            iban=_next_iban(),
        )
        if opening > 0:
            funding = internal_account(kind=BankAccount.Kind.FUNDING, currency=currency)
            posting_create(
                kind=Posting.Kind.OPENING,
                description=f"Opening balance {account.iban}",
                lines=[(funding, -opening), (account, opening)],
            )
            account.refresh_from_db()
        record(
            type=EventType.BANK_ACCOUNT_OPENED,
            user=owner,
            actor=actor or owner,
            details={"account": str(account.id), "currency": currency, "opening_balance": str(opening)},
        )
    return account
