"""Bank accounts and money movement. Payments, beneficiaries and step-up live here too."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from accounts.models import User
from audit import services as audit
from audit.events import EventType, Outcome
from audit.models import AuditEvent
from core.crypto import constant_time_equals, keyed_hash
from core.errors import DomainError
from core.sql import insert_statement, mark_saved, run_together
from notifications.services import email_enqueue
from payments import sca
from payments.ledger import CENT, lock_accounts, posting_create, posting_execute
from payments.models import (
    BankAccount,
    Beneficiary,
    FraudMonitor,
    IdempotencyRecord,
    Payment,
    Posting,
    ScaState,
    StandingOrder,
)


class PaymentError(DomainError):
    """A refusal with a message safe to show the customer (core.errors.DomainError: `code`,
    `status`, `field`; the API maps it in core.api.exception_handler, the web shows `message`)."""

    code = "invalid"
    status = 400


def _next_iban() -> str:
    """A new IBAN of this bank, with valid check digits computed by schwifty."""
    for _ in range(20):
        last = BankAccount.objects.filter(iban__startswith=settings.BANK_IBAN_COUNTRY).count()
        number = str(last + 1).zfill(settings.BANK_ACCOUNT_NUMBER_DIGITS)
        iban = IBAN.generate(settings.BANK_IBAN_COUNTRY, bank_code=settings.BANK_CODE, account_code=number)
        if not BankAccount.objects.filter(iban=str(iban)).exists():
            return str(iban)
    raise PaymentError("could not allocate an IBAN")


def internal_account(*, kind: BankAccount.Kind, currency: str, shard: int = 0) -> BankAccount:
    """The bank's own funding or clearing (sub-)account for a currency (created on first use)."""
    rows = BankAccount.objects.filter(kind=kind, currency=currency, owner__isnull=True, shard=shard)
    existing = rows.first()
    if existing:
        return existing
    name = f"Bank {kind.label} {currency}" + (f" #{shard}" if shard else "")
    for _ in range(3):
        try:
            with transaction.atomic():
                return BankAccount.objects.create(
                    kind=kind, currency=currency, name=name, iban=_next_iban(), shard=shard
                )
        except IntegrityError:  # created concurrently (or its new IBAN was taken meanwhile: try again)
            found = rows.first()
            if found is not None:
                return found
    raise PaymentError("could not open the bank's internal account")


def clearing_shards() -> int:
    return max(1, int(settings.PAYMENT_CLEARING_SHARDS))


def clearing_shard(payment_id: uuid.UUID) -> int:
    """Which clearing sub-account a payment to another bank credits: fixed by its id."""
    return payment_id.int % clearing_shards()


def clearing_account(*, currency: str, payment_id: uuid.UUID) -> BankAccount:
    """The clearing sub-account a payment to another bank credits (created on first use).

    One clearing account per currency would be one row that every external payment locks, so
    they would queue on it. It is PAYMENT_CLEARING_SHARDS ordinary ledger accounts instead: each
    posting is still two entries summing to zero, each sub-account's balance is the sum of its
    entries, and the clearing balance of a currency is their sum (selectors.internal_balance).
    """
    wanted = clearing_shard(payment_id)
    kind = BankAccount.Kind.CLEARING
    found = BankAccount.objects.filter(kind=kind, currency=currency, owner__isnull=True, shard=wanted).first()
    if found is not None:
        return found
    # first use in this currency (or more shards configured): open every missing one now
    have = set(
        BankAccount.objects.filter(kind=kind, currency=currency, owner__isnull=True).values_list("shard", flat=True)
    )
    for shard in range(clearing_shards()):
        if shard not in have and shard != wanted:
            internal_account(kind=kind, currency=currency, shard=shard)
    return internal_account(kind=kind, currency=currency, shard=wanted)


_AMOUNT_RE = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,2})?$")


def parse_amount(raw: object) -> Decimal:
    """A positive amount with at most two decimals, from a decimal string. Never a float.

    Accepts "10", "10.5", "10.50" (and a JSON integer); refuses floats, exponents, NaN/Infinity,
    signs, separators, more than two decimals and more than 15 integer digits.
    """
    if isinstance(raw, (float, bool)):
        raise PaymentError('Send the amount as a decimal string, e.g. "10.50".', code="invalid_amount", field="amount")
    if not isinstance(raw, (str, int, Decimal)):
        raise PaymentError("Enter a valid amount.", code="invalid_amount", field="amount")
    text = str(raw).strip()
    if text.startswith("-") and _AMOUNT_RE.match(text[1:]):
        raise PaymentError("The amount must be more than zero.", code="invalid_amount", field="amount")
    if len(text) > 18 or not _AMOUNT_RE.match(text):
        if re.match(r"^[0-9]+\.[0-9]{3,}$", text):
            raise PaymentError("The amount can have at most two decimal places.", code="invalid_amount", field="amount")
        if re.match(r"^[0-9]{16,}(\.[0-9]*)?$", text):
            raise PaymentError("The amount is too large.", code="invalid_amount", field="amount")
        raise PaymentError("Enter a valid amount, e.g. 10.50.", code="invalid_amount", field="amount")
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError) as exc:  # pragma: no cover - the pattern above prevents it
        raise PaymentError("Enter a valid amount.", code="invalid_amount", field="amount") from exc
    if amount <= 0:
        raise PaymentError("The amount must be more than zero.", code="invalid_amount", field="amount")
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
        audit.record(
            type=EventType.BANK_ACCOUNT_OPENED,
            user=owner,
            actor=actor or owner,
            details={"account": str(account.id), "currency": currency, "opening_balance": str(opening)},
        )
    return account


# --- Errors ---------------------------------------------------------------------------


class PaymentNotFound(PaymentError):
    """Not found, or not the user's: the same answer either way (404)."""

    status = 404


class PaymentGone(PaymentError):
    """The payment can no longer be confirmed: expired, exhausted, changed or already decided (410)."""

    status = 410


class StepUpInvalid(PaymentError):
    """A wrong step-up code; the payment stays pending while attempts are left (400)."""

    def __init__(self, message: str, *, attempts_left: int) -> None:
        super().__init__(message, code="invalid_code", field="code", attempts_left=attempts_left)
        self.attempts_left = attempts_left


class StepUpThrottled(PaymentError):
    """Codes are sent too often, or the second factor is locked (429)."""

    status = 429


class IdempotencyConflict(PaymentError):
    code = "idempotency_conflict"
    status = 409


class PaymentRefused(PaymentError):
    """A refusal on the payment's merits (funds, daily limit): audited as payment.refused."""


# --- IBANs and beneficiaries ----------------------------------------------------------


def iban_normalize(raw: object, *, field: str = "iban") -> str:
    """The electronic form of an IBAN whose country format and check digits are valid."""
    return str(_parse_iban(raw, field=field).compact)


def _parse_iban(raw: object, *, field: str) -> IBAN:
    text = str(raw or "").strip()
    if not text or len(text) > 50:
        raise PaymentError("Enter an IBAN, e.g. DE89 3704 0044 0532 0130 00.", code="invalid_iban", field=field)
    try:
        return IBAN(text)
    except SchwiftyException as exc:
        raise PaymentError(
            "This IBAN is not valid: check the country code, length and check digits.",
            code="invalid_iban",
            field=field,
        ) from exc


def _clean_name(raw: object, *, field: str = "name") -> str:
    name = " ".join(str(raw or "").split())
    if not name:
        raise PaymentError("Enter the payee's name.", code="invalid_name", field=field)
    if len(name) > 70 or any(not ch.isprintable() for ch in name):
        raise PaymentError("Use at most 70 printable characters for the name.", code="invalid_name", field=field)
    return name


def beneficiary_digest(*, user: User, name: str, iban: str) -> str:
    """What a step-up code for adding a beneficiary (API) is bound to."""
    return keyed_hash(f"{user.pk}|{name}|{iban}", purpose="payments.beneficiary-binding")


def _require_recent_auth(*, request: Any) -> None:
    """The one re-authentication check (accounts.authn): the web session's or the token's auth_time."""
    from accounts.authn import require_recent_auth

    require_recent_auth(request)


def beneficiary_code_send(*, user: User, name: str, iban: str, method: str) -> Any:
    """API: sends an SMS/email code bound to the beneficiary being added (then POST it with `code`)."""
    from mfa import services as mfa

    name = _clean_name(name)
    iban = iban_normalize(iban)
    try:
        return mfa.code_send(
            user=user,
            method=method,
            purpose="beneficiary",
            binding=beneficiary_digest(user=user, name=name, iban=iban),
            summary=f"adding the beneficiary {name} ({iban})",
        )
    except (mfa.ResendTooSoon, mfa.TooManyCodes) as exc:
        raise StepUpThrottled(
            "Please wait before asking for another code.", code="throttled", retry_at=getattr(exc, "retry_at", None)
        ) from exc
    except mfa.MethodUnavailable as exc:
        raise PaymentError("This method is not available for you.", code="method_unavailable", field="method") from exc


def beneficiary_add(
    *,
    request: Any,
    user: User,
    name: str,
    iban: str,
    channel: str = "web",
    code: str = "",
    method: str = "",
) -> Beneficiary:
    """Saves a payee. Needs a recent re-authentication (web: sudo mode; API: a fresh login or a
    second-factor code bound to the name and IBAN). Audited; the customer is told by email."""
    from mfa import services as mfa

    name = _clean_name(name)
    iban = iban_normalize(iban)
    if code:
        try:
            mfa.code_verify(
                user=user,
                method=method or "totp",
                code=str(code),
                purpose="beneficiary",
                binding=beneficiary_digest(user=user, name=name, iban=iban),
            )
        except mfa.InvalidCode as exc:
            raise StepUpInvalid(
                "The code is not correct.", attempts_left=int(getattr(exc, "attempts_left", 0) or 0)
            ) from exc
        except mfa.ChallengeExpired as exc:
            raise PaymentError(
                "There is no valid code for this beneficiary: ask for a new one.",
                code="challenge_expired",
                field="code",
            ) from exc
        except mfa.MethodUnavailable as exc:
            raise PaymentError(
                "This method is not available for you.", code="method_unavailable", field="method"
            ) from exc
        except mfa.SecondFactorLocked as exc:
            raise StepUpThrottled(
                "Too many wrong codes: try again later.", code="locked", retry_at=getattr(exc, "retry_at", None)
            ) from exc
    else:
        _require_recent_auth(request=request)
    with transaction.atomic():
        if Beneficiary.objects.filter(owner=user, iban=iban).exists():
            raise PaymentError("You already saved this IBAN.", code="duplicate_beneficiary", field="iban")
        beneficiary = Beneficiary.objects.create(owner=user, name=name, iban=iban)
        audit.record(
            type=EventType.BENEFICIARY_ADDED,
            user=user,
            details={"beneficiary": str(beneficiary.id), "iban": _mask_iban(iban), "channel": channel},
        )
        email_enqueue(
            to=user.email,
            template="beneficiary_added",
            context={"user": user, "beneficiary": beneficiary, "when": beneficiary.created_at},
            purpose="beneficiary_added",
            user=user,
        )
    return beneficiary


def _mask_iban(iban: str) -> str:
    return f"{iban[:4]}…{iban[-4:]}" if len(iban) > 8 else iban


# --- Payments -------------------------------------------------------------------------

STEP_UP_METHODS = ("totp", "webauthn", "sms", "email")


@dataclass(frozen=True)
class PaymentOutcome:
    """What payment_create did: the payment, whether this is a replay of an earlier request
    (same Idempotency-Key and body), and the payment as it was first answered (`snapshot`)."""

    payment: Payment
    snapshot: dict[str, Any]
    replayed: bool = False
    methods: tuple[str, ...] = ()

    @property
    def needs_step_up(self) -> bool:
        return self.snapshot.get("status") == Payment.Status.PENDING_STEP_UP


def payment_digest(payment: Payment) -> str:
    """HMAC-SHA256 (keyed from SECRET_KEY) of what the customer authorises: recomputed at confirmation."""
    value = "|".join(
        [
            str(payment.id),
            str(payment.from_account_id),
            payment.payee_iban,
            str(Decimal(payment.amount).quantize(CENT)),
            payment.currency,
            payment.payee_name,  # the name the customer saw in the code message is part of the payee (RTS Art. 5)
        ]
    )
    return keyed_hash(value, purpose="payments.step-up-binding")


def payment_summary(payment: Payment) -> str:
    """The human text a step-up code authorises (the SMS/email states amount and payee)."""
    payee = f"{payment.payee_name} (IBAN {payment.payee_iban})" if payment.payee_name else f"IBAN {payment.payee_iban}"
    return f"payment of {Decimal(payment.amount).quantize(CENT)} {payment.currency} to {payee}"


def step_up_methods(*, user: User) -> list[str]:
    """The factors that can confirm a payment (recovery codes cannot: they are not bound to it);
    ["email"] (a code to the verified address) for a customer with none, where the deployment allows it."""
    from mfa import selectors as mfa_selectors

    return list(mfa_selectors.step_up_methods(user=user))


def email_fallback_only(*, user: User, methods: list[str] | None = None) -> bool:
    """True when the only way to confirm is the emailed code to the verified address (no factor):
    the answer then invites the customer to add a stronger factor."""
    from mfa import selectors as mfa_selectors

    methods = step_up_methods(user=user) if methods is None else methods
    return methods == ["email"] and not mfa_selectors.confirmed_factors(user=user, method="email").exists()


class SecondFactorRequired(PaymentRefused):
    """A payment needing SCA from a customer with no factor that can confirm it (403): staff and
    the security group without a strong factor, or any customer when STEP_UP_EMAIL_FALLBACK=False."""

    code = "second_factor_required"
    status = 403


def request_hash(data: dict[str, Any]) -> str:
    """A stable digest of a request body, to tell a replay from a different request."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _credit_account_id(payment: Payment) -> object:
    if payment.payee_account_id:
        return payment.payee_account_id
    return clearing_account(currency=payment.currency, payment_id=payment.id).id


def _post(payment: Payment, accounts: dict[str, BankAccount]) -> None:
    """Executes a payment whose customer accounts are locked (a confirmed step-up): the ledger
    entries, the payment marked completed, its audit row. The clearing sub-account of a payment
    to another bank is locked by the posting's own statement, at the end."""
    source = accounts[str(payment.from_account_id)]
    if source.balance < payment.amount:
        raise PaymentRefused("There is not enough money in the account.", code="insufficient_funds", field="amount")
    credit_id = _credit_account_id(payment)
    now = timezone.now()
    posting_id = uuid.uuid4()
    payment.posting_id = posting_id
    payment.status = Payment.Status.COMPLETED
    payment.completed_at = now
    _completed_notices(payment)
    update = (
        f'UPDATE "{Payment._meta.db_table}" SET "posting_id" = %s, "status" = %s, "completed_at" = %s '  # noqa: S608  # nosec B608 - table name from model metadata
        'WHERE "id" = %s',
        [posting_id, payment.status, now, payment.id],
    )
    fast = _pg()
    posting_execute(
        kind=Posting.Kind.PAYMENT,
        description=f"Payment {payment.id} to {payment.payee_iban}",
        currency=payment.currency,
        lines=[(payment.from_account_id, -payment.amount), (credit_id, payment.amount)],
        created_at=now,
        posting_id=posting_id,
        before=[update] if fast else [],
    )
    if not fast:
        payment.save(update_fields=["posting", "status", "completed_at"])


def _completed_notices(payment: Payment, *, written: bool = True) -> AuditEvent:
    """The audit row of a completed payment (recorded now, or with `written=False` built for the
    caller's statement, audit.services.insert_statement) and, above the threshold, the customer's email."""
    built = audit.event(type=EventType.PAYMENT_COMPLETED, user=payment.owner, details=_audit_details(payment))
    if written:
        audit.record_many([built])
    if payment.amount > settings.STEP_UP_THRESHOLD:
        email_enqueue(
            to=payment.owner.email,
            template="payment_completed",
            context={"user": payment.owner, "payment": payment, "when": payment.completed_at},
            purpose="payment_completed",
            user=payment.owner,
        )
    return built


def _audit_details(payment: Payment, **extra: Any) -> dict[str, Any]:
    return {
        "payment": str(payment.id),
        "account": str(payment.from_account_id),
        "amount": str(payment.amount),
        "currency": payment.currency,
        "payee": _mask_iban(payment.payee_iban),
        **extra,
    }


def _lock_for(payment: Payment) -> dict[str, BankAccount]:
    """The payment's customer accounts, locked in id order (a clearing sub-account is locked by
    the posting itself, last: every transaction takes customer accounts before bank accounts)."""
    return lock_accounts([payment.from_account_id, *([payment.payee_account_id] if payment.payee_account_id else [])])


def _resolve_payee(
    *, user: User, source: BankAccount, beneficiary_id: object, to_iban: object, payee_name: object
) -> tuple[Beneficiary | None, str, str, BankAccount | None]:
    """The payee of a payment not made through payment_create's locking statement (standing orders, previews):
    the same checks, with the internal account looked up here. (beneficiary, iban, name, internal account)"""
    target = _payee_target(user=user, beneficiary_id=beneficiary_id, to_iban=to_iban, payee_name=payee_name)
    if target.iban == source.iban:
        raise PaymentError("You cannot pay an account into itself.", code="same_account", field="to_iban")
    found = BankAccount.objects.filter(iban=target.iban, kind=BankAccount.Kind.CUSTOMER, is_active=True).first()
    beneficiary, name, internal = _payee_checks(user=user, source=source, target=target, found=found)
    return beneficiary, target.iban, name, internal


NIL_UUID = uuid.UUID(int=0)


def _as_uuid(value: object) -> uuid.UUID:
    """The UUID in `value`, or the nil UUID (which matches no row) when it is not one."""
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return NIL_UUID


def own_account(*, user: User, account_id: object, field: str = "from_account") -> BankAccount:
    account = BankAccount.objects.filter(
        owner=user, kind=BankAccount.Kind.CUSTOMER, is_active=True, id=_as_uuid(account_id)
    ).first()
    if account is None:
        raise PaymentNotFound("Account not found.", code="not_found", field=field)
    return account


def _replay(record_row: IdempotencyRecord, digest: str) -> PaymentOutcome:
    if record_row.request_hash != digest or record_row.payment is None:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request.", code="idempotency_conflict"
        )
    return PaymentOutcome(payment=record_row.payment, snapshot=dict(record_row.response_body or {}), replayed=True)


# --- SCA state: the customer's row lock and counters (payments/sca.py decides) ------------------


def _pg() -> bool:
    """The payment path's hand-written statements are PostgreSQL's; dev SQLite takes the ORM."""
    return connection.vendor == "postgresql"


_SELECT_LISTS: dict[tuple[type, str], tuple[list[str], str]] = {}


def _select_list(model: type[Any], alias: str) -> tuple[list[str], str]:
    """(attnames, SQL column list) of a model's concrete fields, for Model.from_db."""
    key = (model, alias)
    if key not in _SELECT_LISTS:
        fields = model._meta.concrete_fields
        _SELECT_LISTS[key] = ([f.attname for f in fields], ", ".join(f'{alias}."{f.column}"' for f in fields))
    return _SELECT_LISTS[key]


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _sca_state_locked(user: User) -> ScaState:
    """The customer's ScaState row, locked until the end of the transaction (created on first use)."""
    if not _pg():
        ScaState.objects.bulk_create([ScaState(user=user)], ignore_conflicts=True)
        return ScaState.objects.select_for_update().get(user=user)
    names, columns = _select_list(ScaState, "s")
    sql = f'SELECT {columns} FROM "{ScaState._meta.db_table}" AS s WHERE s."user_id" = %s FOR UPDATE'  # noqa: S608  # nosec B608 - identifiers from model metadata
    rows = _fetch(sql, [user.pk])
    if not rows:
        ScaState.objects.bulk_create([ScaState(user=user)], ignore_conflicts=True)
        rows = _fetch(sql, [user.pk])
    return ScaState.from_db(connection.alias, names, rows[0])


def _sca_applied(user: User) -> None:
    """SCA was just applied for this customer: the counters start again (Art. 16, splitting)."""
    state = _sca_state_locked(user)
    state.last_sca_at = timezone.now()
    state.amount_since_sca = Decimal("0.00")
    state.count_since_sca = 0
    state.save(update_fields=["last_sca_at", "amount_since_sca", "count_since_sca"])


def _count_without_sca_statement(user: User, amount: Decimal) -> tuple[str, list[Any]]:
    """What went out without SCA since the last one grows (the row is locked by this payment)."""
    return (
        f'UPDATE "{ScaState._meta.db_table}" SET "amount_since_sca" = "amount_since_sca" + %s, '  # noqa: S608  # nosec B608 - table name from model metadata
        '"count_since_sca" = "count_since_sca" + 1 WHERE "user_id" = %s',
        [amount, user.pk],
    )


def _idempotency_claim(*, user: User, key: str, digest: str) -> int | None:
    """Claims an Idempotency-Key for this request, as the first statement of its transaction:
    the record's id, or None when the key is taken. A concurrent request with the same key that
    has not committed yet is waited for by the INSERT (the unique index), then seen as taken."""
    if not _pg():
        try:
            with transaction.atomic():
                return int(IdempotencyRecord.objects.create(owner=user, key=key, request_hash=digest).pk)
        except IntegrityError:
            return None
    table = IdempotencyRecord._meta.db_table
    rows = _fetch(
        f'INSERT INTO "{table}" ("owner_id", "key", "request_hash", "response_status", "response_body", "created_at") '  # noqa: S608  # nosec B608 - table name from model metadata
        'VALUES (%s, %s, %s, 0, \'{}\'::jsonb, %s) ON CONFLICT ("owner_id", "key") DO NOTHING RETURNING "id"',
        [user.pk, key, digest, timezone.now()],
    )
    return int(rows[0][0]) if rows else None


def _idempotency_statement(idem_id: int, payment: Payment, snapshot: dict[str, Any]) -> tuple[str, list[Any]]:
    body = IdempotencyRecord._meta.get_field("response_body").get_db_prep_save(snapshot, connection)
    return (
        f'UPDATE "{IdempotencyRecord._meta.db_table}" SET "payment_id" = %s, "response_body" = %s WHERE "id" = %s',  # noqa: S608  # nosec B608 - table name from model metadata
        [payment.id, body, idem_id],
    )


def _decision_event(payment: Payment, decision: sca.ScaDecision) -> AuditEvent:
    """Every SCA decision is audited with the article it relied on (RTS Art. 13-18 or the rule)."""
    return audit.event(
        type=EventType.PAYMENT_SCA_DECIDED,
        user=payment.owner,
        outcome=Outcome.INFO,
        reason=decision.exemption or ("sca_required" if decision.required else "not_required"),
        details=_audit_details(payment, **decision.as_details()),
    )


@dataclass(frozen=True)
class PayerContext:
    """Where the payment comes from, for the risk factors: the device (known / new / unknown) and
    the payer's country (from the request context when not given)."""

    device: str = "unknown"
    country: str = ""


def payer_context(*, request: Any, channel: str) -> PayerContext:
    """The device and place of the request: the web's device cookie, or the app's X-Device-Id
    header (the device_id it sent at login); known = seen for SCA_NEW_DEVICE_HOURS or more."""
    from core import context
    from risk import services as risk

    device = "unknown"
    try:
        header = request.headers.get("X-Device-Id") if channel == Payment.Channel.API else None
        known = risk.current_device(request=request, user=request.user, device_id=header)
        if channel == Payment.Channel.API and not header:
            known = None
        if known is not None:
            age = timezone.now() - known.first_seen_at
            device = "known" if age >= timedelta(hours=settings.SCA_NEW_DEVICE_HOURS) else "new"
        else:
            device = "new"
    except Exception:  # no device information: the risk score counts it as a new device
        device = "unknown"
    return PayerContext(device=device, country=context.current().country)


def payment_create(
    *,
    user: User,
    from_account: object,
    amount: object,
    currency: object,
    beneficiary: object = None,
    to_iban: object = None,
    payee_name: object = "",
    reference: object = "",
    channel: str = "web",
    idempotency_key: str = "",
    body_hash: str = "",
    payer: PayerContext | None = None,
) -> PaymentOutcome:
    """Validates and creates a payment. payments/sca.py decides once whether SCA applies (or which
    RTS exemption lifts it): without SCA it is executed at once; with SCA it waits for a step-up
    bound to its digest.

    With `idempotency_key`, the first accepted answer is stored with the payment in one
    transaction: the same key and body replay it, another body is a conflict. Refusals are
    not stored, so a retry after fixing the cause goes through.

    Statements (PostgreSQL): the key claimed, the customer's SCA state locked, the source and an
    internal payee account locked (in id order, with the clearing sub-account's id), the facts
    the rules need in one read, the audit rows, then one statement writing the payment, the
    posting, both balances, the entries, the SCA counters and the idempotency record.
    """
    source: BankAccount | None = None
    value = Decimal("0")
    iban = ""
    try:
        with transaction.atomic():
            idem_id = None
            if idempotency_key:
                idem_id = _idempotency_claim(user=user, key=idempotency_key, digest=body_hash)
                if idem_id is None:
                    existing = IdempotencyRecord.objects.select_related("payment").get(owner=user, key=idempotency_key)
                    return _replay(existing, body_hash)
            value = parse_amount(amount)
            payment_id = uuid.uuid4()
            currency_code = str(currency or "").strip().upper()
            deferred: list[PaymentError] = []  # raised in the order the checks always ran
            try:
                reference_text = _clean_reference(reference)
            except PaymentError as exc:
                reference_text = ""
                deferred.append(exc)
            try:
                target: _PayeeTarget | None = _payee_target(
                    user=user, beneficiary_id=beneficiary, to_iban=to_iban, payee_name=payee_name
                )
            except PaymentError as exc:
                target = None
                deferred.append(exc)
            state = _sca_state_locked(user)
            now = timezone.now()
            facts = None
            if target is not None and _pg():
                facts = sca.facts_query(
                    user_id=user.pk,
                    account_id=_as_uuid(from_account),
                    currency=currency_code,
                    payee_iban=target.iban,
                    beneficiary=target.beneficiary,
                    state=state,
                    now=now,
                )
            locked = _lock_payment_accounts(
                user=user,
                account_id=from_account,
                iban=target.iban if target else "",
                currency=currency_code,
                shard=clearing_shard(payment_id),
                facts=facts,
            )
            source = locked.source
            if source is None:
                raise PaymentNotFound("Account not found.", code="not_found", field="from_account")
            if currency_code != source.currency:
                raise PaymentError(
                    f"This account holds {source.currency}; the payment must be in {source.currency}.",
                    code="currency_mismatch",
                    field="currency",
                )
            if deferred:
                raise deferred[0]
            assert target is not None
            iban = target.iban
            payee, name, internal = _payee_checks(user=user, source=source, target=target, found=locked.payee)
            payment, methods, snapshot = _payment_new(
                user=user,
                source=source,
                value=value,
                payee=payee,
                iban=iban,
                name=name,
                internal=internal,
                reference_text=reference_text,
                channel=channel,
                payer=payer or PayerContext(),
                state=state,
                accounts=locked.accounts,
                payment_id=payment_id,
                clearing_id=locked.clearing_id,
                idem_id=idem_id,
                answer=True,
                facts_cache=locked.facts,
                now=now,
            )
    except PaymentRefused as exc:
        _record_refusal(user=user, source=source, value=value, iban=iban, code=exc.code)
        raise
    assert snapshot is not None
    return PaymentOutcome(payment=payment, snapshot=snapshot, methods=tuple(methods))


@dataclass(frozen=True)
class _PayeeTarget:
    beneficiary: Beneficiary | None
    iban: str
    name: str
    ours: bool  # an IBAN of this bank (its country and bank code)


def _payee_target(*, user: User, beneficiary_id: object, to_iban: object, payee_name: object) -> _PayeeTarget:
    """The payee as given: a saved beneficiary or a valid IBAN (no account looked up yet)."""
    beneficiary = None
    if beneficiary_id and to_iban:
        raise PaymentError("Choose a saved beneficiary or enter an IBAN, not both.", code="invalid_payee")
    if beneficiary_id:
        beneficiary = Beneficiary.objects.filter(owner=user, id=_as_uuid(beneficiary_id)).first()
        if beneficiary is None:
            raise PaymentNotFound("Beneficiary not found.", code="not_found", field="beneficiary")
        iban, name = beneficiary.iban, beneficiary.name
        parsed = IBAN(iban, allow_invalid=True)
    elif to_iban:
        parsed = _parse_iban(to_iban, field="to_iban")
        iban = str(parsed.compact)
        name = _clean_name(payee_name, field="payee_name") if payee_name else ""
    else:
        raise PaymentError("Choose a beneficiary or enter an IBAN.", code="invalid_payee", field="to_iban")
    ours = parsed.country_code == settings.BANK_IBAN_COUNTRY and parsed.bank_code == settings.BANK_CODE
    return _PayeeTarget(beneficiary=beneficiary, iban=iban, name=name, ours=ours)


def _payee_checks(
    *, user: User, source: BankAccount, target: _PayeeTarget, found: BankAccount | None
) -> tuple[Beneficiary | None, str, BankAccount | None]:
    """The payee against the locked accounts: (beneficiary, name, internal payee account)."""
    if target.iban == source.iban:
        raise PaymentError("You cannot pay an account into itself.", code="same_account", field="to_iban")
    internal = found
    if internal is None:
        if target.ours:
            raise PaymentError(
                f"No account with this IBAN exists at {settings.BANK_NAME}.", code="unknown_account", field="to_iban"
            )
    elif internal.currency != source.currency:
        raise PaymentError("The payee's account holds another currency.", code="currency_mismatch", field="currency")
    name = target.name
    if not name and internal is not None:
        name = internal.name if internal.owner_id == user.pk else ""
    return target.beneficiary, name, internal


@dataclass(frozen=True)
class _LockedAccounts:
    source: BankAccount | None
    payee: BankAccount | None
    clearing_id: object
    accounts: dict[str, BankAccount]
    facts: dict[str, Any] | None = None


def _lock_payment_accounts(
    *, user: User, account_id: object, iban: str, currency: str, shard: int, facts: sca.FactsQuery | None = None
) -> _LockedAccounts:
    """One statement: the customer's source account and the active customer account holding the
    payee's IBAN (if any), locked in id order, the id of the currency's clearing sub-account
    number `shard` (not locked: the posting locks it at the end) and, with `facts`, what the SCA
    rules and the daily limit read.

    The facts' subqueries read the snapshot this statement started with, possibly before it
    waited for an account's lock. That is exact: every payment of this customer (the only writes
    they read: this account's and this customer's payments, counters, saved payees being paid)
    holds the customer's ScaState row, which the caller locked in the statement before; whoever
    else holds an account of this customer (a transfer into it) writes none of them."""
    source_id = _as_uuid(account_id)
    customer = BankAccount.Kind.CUSTOMER
    facts_cache: dict[str, Any] | None = None
    if not _pg():
        rows = BankAccount.objects.filter(kind=customer, is_active=True).filter(
            Q(id=source_id, owner=user) | Q(iban=iban)
        )
        accounts = lock_accounts([a.id for a in rows])
        clearing = BankAccount.objects.filter(
            kind=BankAccount.Kind.CLEARING, currency=currency, owner__isnull=True, shard=shard
        ).first()
        clearing_id: object = clearing.id if clearing else None
    else:
        names, columns = _select_list(BankAccount, "a")
        table = BankAccount._meta.db_table
        extra = f", {facts.columns}" if facts else ""
        join = facts.join if facts else ""
        sql = (
            f'SELECT {columns}, (SELECT c."id" FROM "{table}" AS c WHERE c."owner_id" IS NULL AND c."kind" = %s '  # noqa: S608  # nosec B608 - identifiers from model metadata
            f'AND c."currency" = %s AND c."shard" = %s){extra} FROM "{table}" AS a{join} WHERE a."kind" = %s '
            'AND a."is_active" AND ((a."id" = %s AND a."owner_id" = %s) OR a."iban" = %s) '
            'ORDER BY a."id" FOR UPDATE OF a'
        )
        params: list[Any] = [BankAccount.Kind.CLEARING.value, currency, shard]
        if facts:
            params += facts.column_params + facts.join_params
        params += [customer.value, source_id, user.pk, iban]
        accounts = {}
        clearing_id = None
        width = len(names)
        for row in _fetch(sql, params):
            account = BankAccount.from_db(connection.alias, names, row[:width])
            accounts[str(account.id)] = account
            clearing_id = row[width]
            if facts and facts_cache is None:
                facts_cache = facts.parse(row[width + 1 :])
    source = accounts.get(str(source_id))
    if source is not None and source.owner_id != user.pk:
        source = None
    payee = next((a for a in accounts.values() if a.iban == iban), None) if iban else None
    return _LockedAccounts(source=source, payee=payee, clearing_id=clearing_id, accounts=accounts, facts=facts_cache)


def _snapshot(payment: Payment, methods: list[str]) -> dict[str, Any]:
    from payments.selectors import payment_representation

    return payment_representation(
        payment, methods=methods if payment.status == Payment.Status.PENDING_STEP_UP else None
    )


def _record_refusal(*, user: User, source: BankAccount | None, value: Decimal, iban: str, code: str) -> None:
    audit.record(
        type=EventType.PAYMENT_REFUSED,
        user=user,
        outcome=Outcome.DENIED,
        reason=code,
        details={
            "account": str(source.id) if source else "",
            "amount": str(value),
            "currency": source.currency if source else "",
            "payee": _mask_iban(iban),
            "stage": "create",
        },
    )


def _clean_reference(reference: object) -> str:
    reference_text = " ".join(str(reference or "").split())
    if len(reference_text) > 140 or any(not ch.isprintable() for ch in reference_text):
        raise PaymentError("Use at most 140 printable characters.", code="invalid_reference", field="reference")
    return reference_text


def _payment_new(
    *,
    user: User,
    source: BankAccount,
    value: Decimal,
    payee: Beneficiary | None,
    iban: str,
    name: str,
    internal: BankAccount | None,
    reference_text: str,
    channel: str,
    payer: PayerContext,
    standing_order: StandingOrder | None = None,
    decision: sca.ScaDecision | None = None,
    sca_done: bool = False,
    state: ScaState | None = None,
    accounts: dict[str, BankAccount] | None = None,
    payment_id: uuid.UUID | None = None,
    clearing_id: object = None,
    idem_id: int | None = None,
    answer: bool = False,
    facts_cache: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[Payment, list[str], dict[str, Any] | None]:
    """Inside the caller's transaction: locks the customer's SCA state and the customer accounts
    (unless the caller did: `state`, `accounts`), checks funds and limits, decides SCA (unless
    `decision` is given), audits, saves and executes the payment when no SCA is needed. Returns
    the payment, the methods that can confirm it and, with `answer` or `idem_id`, the API's
    answer (stored with the idempotency record).

    Lock order, everywhere: the customer's ScaState, then customer accounts in id order, then
    (in the posting's statement, last) a clearing sub-account."""
    payment_id = payment_id or uuid.uuid4()
    if state is None:
        state = _sca_state_locked(user)
    if accounts is None:
        accounts = lock_accounts([source.id, *([internal.id] if internal else [])])
    locked_source = accounts[str(source.id)]
    if locked_source.balance < value:
        raise PaymentRefused("There is not enough money in the account.", code="insufficient_funds", field="amount")
    facts = sca.PaymentFacts(
        user=user,
        account=locked_source,
        amount=value,
        currency=source.currency,
        payee_iban=iban,
        payee_account=internal,
        beneficiary=payee,
        state=state,
        device=payer.device,
        country=payer.country,
        standing_order=standing_order,
        now=now or timezone.now(),
    )
    if facts_cache:  # read with the accounts' lock
        facts._cache.update(facts_cache)
    else:
        facts.load()
    if facts.day_total() + value > settings.PAYMENT_DAILY_LIMIT:
        raise PaymentRefused(
            f"This payment would exceed the account's daily limit of {settings.PAYMENT_DAILY_LIMIT} {source.currency}.",
            code="daily_limit",
            field="amount",
        )
    if decision is None:
        decision = sca.decide(facts)
    if decision.required and not sca_done and standing_order is not None:
        # a standing order runs unattended: without its exemption it cannot be confirmed now
        raise PaymentRefused(
            "This standing order needs to be confirmed again before it can run.", code="standing_order_needs_sca"
        )
    pending = decision.required and not sca_done
    methods = step_up_methods(user=user) if pending else []
    if pending and not methods:
        raise SecondFactorRequired(
            "This payment needs a confirmation with a second factor: set one up on the Security page first.",
            code="second_factor_required",
        )
    now = timezone.now()
    payment = Payment(
        id=payment_id,
        owner=user,
        from_account=locked_source,
        beneficiary=payee,
        payee_name=name,
        payee_iban=iban,
        payee_account=internal,
        amount=value,
        currency=source.currency,
        reference=reference_text,
        channel=channel,
        status=Payment.Status.PENDING_STEP_UP if pending else Payment.Status.COMPLETED,
        step_up_reasons=list(decision.reasons) if decision.required else [],
        sca_required=decision.required,
        sca_exemption=decision.exemption or "",
        sca_article=decision.article[:32],
        risk_score=decision.risk_score,
        standing_order=standing_order,
        step_up_method="standing_order" if sca_done else "",
        created_at=now,
    )
    if pending:
        payment.binding_digest = payment_digest(payment)
        payment.step_up_challenge_id = uuid.uuid4()
        payment.step_up_expires_at = now + timedelta(seconds=settings.PAYMENT_STEP_UP_TTL_SECONDS)
    else:
        payment.posting_id = uuid.uuid4()
        payment.completed_at = now
    # The payment's audit rows are written by the payment's own statement (_payment_write).
    events = [
        audit.event(type=EventType.PAYMENT_CREATED, user=user, details=_audit_details(payment, channel=channel)),
        _decision_event(payment, decision),
    ]
    if pending:
        step_up = audit.event(
            type=EventType.PAYMENT_STEP_UP_ISSUED,
            user=user,
            outcome=Outcome.INFO,
            reason=",".join(decision.reasons),
            details=_audit_details(
                payment,
                challenge=str(payment.step_up_challenge_id),
                email_fallback=email_fallback_only(user=user, methods=methods),
            ),
        )
        events.append(step_up)
    else:
        events.append(_completed_notices(payment, written=False))
    snapshot = _snapshot(payment, methods) if answer or idem_id is not None else None
    _payment_write(
        payment,
        credit_id=None if pending else (internal.id if internal else clearing_id),
        counts=not pending and decision.counts,
        idem=(idem_id, snapshot) if idem_id is not None and snapshot is not None else None,
        events=events,
    )
    return payment, methods, snapshot


def _payment_posting(payment: Payment, credit_id: object, **statements: Any) -> None:
    """The payment's posting: the payer's account debited, the payee's (or a clearing sub-account) credited;
    `statements` (before/after) join it in one statement on PostgreSQL (payments.ledger.posting_execute)."""
    posting_execute(
        kind=Posting.Kind.PAYMENT,
        description=f"Payment {payment.id} to {payment.payee_iban}",
        currency=payment.currency,
        lines=[(payment.from_account_id, -payment.amount), (credit_id, payment.amount)],
        created_at=payment.created_at,
        posting_id=payment.posting_id,
        **statements,
    )


def _payment_write(
    payment: Payment,
    *,
    credit_id: object,
    counts: bool,
    idem: tuple[int, dict[str, Any]] | None,
    events: Sequence[AuditEvent],
) -> None:
    """Writes a new payment: with `credit_id` (executed now) together with its posting, and the
    SCA counters when it went out without SCA (`counts`); the idempotency record's answer; its
    audit `events` (built by audit.services.event). PostgreSQL: one statement, so the audit rows
    commit or roll back with the payment. Elsewhere: the ORM, one write after the other."""
    user = payment.owner
    if credit_id is None and payment.status == Payment.Status.COMPLETED:
        credit_id = clearing_account(currency=payment.currency, payment_id=payment.id).id
    if not _pg():
        if payment.status == Payment.Status.COMPLETED:
            _payment_posting(payment, credit_id)
        payment.save(force_insert=True)
        if counts:
            ScaState.objects.filter(user=user).update(
                amount_since_sca=F("amount_since_sca") + payment.amount, count_since_sca=F("count_since_sca") + 1
            )
        if idem is not None:
            IdempotencyRecord.objects.filter(id=idem[0]).update(payment=payment, response_body=idem[1])
        audit.record_many(events)
        return
    insert = insert_statement([payment], using=connection.alias)
    after = [_count_without_sca_statement(user, payment.amount)] if counts else []
    if idem is not None:
        after.append(_idempotency_statement(idem[0], payment, idem[1]))
    after.append(audit.insert_statement(events))
    if payment.status == Payment.Status.COMPLETED:
        _payment_posting(payment, credit_id, before=[insert], after=after)
    else:
        run_together([insert, *after], using=connection.alias)
    audit.written(events)
    mark_saved([payment], using=connection.alias)


def _locked_payment(*, user: User, payment_id: object) -> Payment:
    payment = (
        Payment.objects.select_for_update().filter(owner=user, id=_as_uuid(payment_id)).select_related("owner").first()
    )
    if payment is None:
        raise PaymentNotFound("Payment not found.", code="not_found")
    return payment


def _end(payment: Payment, *, status: str, reason: str, event: EventType) -> None:
    payment.status = status
    payment.refusal_reason = reason[:64]
    payment.save(update_fields=["status", "refusal_reason"])
    audit.record(
        type=event,
        user=payment.owner,
        outcome=Outcome.DENIED if event == EventType.PAYMENT_REFUSED else Outcome.INFO,
        reason=reason,
        details=_audit_details(payment, stage="step_up"),
    )


def _check_pending(payment: Payment) -> PaymentGone | None:
    """Ends an expired or tampered pending payment; returns the error to raise after commit."""
    if payment.status != Payment.Status.PENDING_STEP_UP:
        return PaymentGone("This payment is no longer waiting for confirmation.", code="payment_not_pending")
    if payment.step_up_expires_at is None or timezone.now() >= payment.step_up_expires_at:
        _end(payment, status=Payment.Status.EXPIRED, reason="step_up_expired", event=EventType.PAYMENT_EXPIRED)
        return PaymentGone("The time to confirm this payment has run out.", code="step_up_expired")
    if not constant_time_equals(payment_digest(payment), payment.binding_digest):
        audit.record(
            type=EventType.PAYMENT_STEP_UP_FAILED,
            user=payment.owner,
            outcome=Outcome.FAILURE,
            reason="binding_mismatch",
            details=_audit_details(payment),
        )
        _end(payment, status=Payment.Status.REFUSED, reason="binding_mismatch", event=EventType.PAYMENT_REFUSED)
        return PaymentGone(
            "This payment changed after the confirmation was requested and was refused.", code="payment_changed"
        )
    return None


def payment_step_up_send(*, user: User, payment_id: object, method: str) -> dict[str, Any]:
    """Sends a code (sms/email) bound to the payment's digest, or begins a passkey assertion whose
    challenge carries the digest (webauthn). Returns what the client needs."""
    from mfa import services as mfa

    error: PaymentError | None = None
    result: dict[str, Any] = {}
    with transaction.atomic():
        payment = _locked_payment(user=user, payment_id=payment_id)
        error = _check_pending(payment)
        if error is None:
            digest = payment.binding_digest
            try:
                if method == "webauthn":
                    result = {
                        "method": "webauthn",
                        "options": mfa.webauthn_begin_assertion(user=user, purpose="payment", binding=digest),
                    }
                elif method in ("sms", "email"):
                    challenge = mfa.code_send(
                        user=user, method=method, purpose="payment", binding=digest, summary=payment_summary(payment)
                    )
                    result = {
                        "method": method,
                        "sent_to": getattr(challenge, "sent_to", ""),
                        "expires_at": min(challenge.expires_at, payment.step_up_expires_at)  # type: ignore[type-var]
                        if getattr(challenge, "expires_at", None)
                        else payment.step_up_expires_at,
                    }
                else:
                    raise PaymentError('Choose "sms", "email" or "webauthn".', code="invalid_method", field="method")
            except (mfa.ResendTooSoon, mfa.TooManyCodes) as exc:
                error = StepUpThrottled(
                    "Please wait before asking for another code.",
                    code="throttled",
                    retry_at=getattr(exc, "retry_at", None),
                )
            except mfa.MethodUnavailable:
                error = PaymentError("This method is not available for you.", code="method_unavailable", field="method")
            except mfa.SecondFactorLocked as exc:
                error = StepUpThrottled(
                    "Too many wrong codes: try again later.", code="locked", retry_at=getattr(exc, "retry_at", None)
                )
            else:
                audit.record(
                    type=EventType.PAYMENT_STEP_UP_ISSUED,
                    user=user,
                    outcome=Outcome.INFO,
                    reason="code_sent" if method != "webauthn" else "passkey_challenge",
                    details=_audit_details(payment, method=method),
                )
    if error is not None:
        raise error
    return result


def payment_confirm(*, user: User, payment_id: object, method: str, code: str = "", credential: Any = None) -> Payment:
    """Confirms a pending payment with a factor bound to its recomputed digest, then executes it
    under the account locks (funds checked again). Wrong codes count; the last one refuses it."""
    from mfa import services as mfa

    error: PaymentError | None = None
    with transaction.atomic():
        payment = _locked_payment(user=user, payment_id=payment_id)
        error = _check_pending(payment)
        if error is None:
            digest = payment_digest(payment)
            method = (method or "").strip().lower()
            failure: str | None = None
            try:
                if method == "webauthn":
                    mfa.webauthn_finish_assertion(user=user, credential=credential, purpose="payment", binding=digest)
                elif method in ("totp", "sms", "email"):
                    if not str(code or "").strip():
                        raise PaymentError("Enter the code.", code="invalid_code", field="code")
                    mfa.code_verify(user=user, method=method, code=str(code).strip(), purpose="payment", binding=digest)
                else:
                    raise PaymentError(
                        'Choose "totp", "sms", "email" or "webauthn".', code="invalid_method", field="method"
                    )
            except mfa.InvalidCode:
                failure = "invalid_code"
            except mfa.ChallengeExpired:
                failure = "challenge_expired"
            except mfa.MethodUnavailable:
                error = PaymentError("This method is not available for you.", code="method_unavailable", field="method")
            except mfa.SecondFactorLocked as exc:
                error = StepUpThrottled(
                    "Too many wrong codes: try again later.", code="locked", retry_at=getattr(exc, "retry_at", None)
                )
            if error is None and failure is not None:
                payment.step_up_attempts += 1
                payment.save(update_fields=["step_up_attempts"])
                left = max(settings.PAYMENT_STEP_UP_MAX_ATTEMPTS - payment.step_up_attempts, 0)
                audit.record(
                    type=EventType.PAYMENT_STEP_UP_FAILED,
                    user=user,
                    outcome=Outcome.FAILURE,
                    reason=failure,
                    details=_audit_details(payment, method=method, attempts_left=left),
                )
                if left == 0:
                    _end(
                        payment,
                        status=Payment.Status.REFUSED,
                        reason="step_up_exhausted",
                        event=EventType.PAYMENT_REFUSED,
                    )
                    error = PaymentGone("Too many wrong codes: the payment was refused.", code="step_up_exhausted")
                elif failure == "challenge_expired":
                    error = StepUpInvalid(
                        "There is no valid code for this payment: ask for a new one.", attempts_left=left
                    )
                else:
                    error = StepUpInvalid("The code is not correct.", attempts_left=left)
            elif error is None:
                payment.step_up_method = method
                payment.save(update_fields=["step_up_method"])
                audit.record(
                    type=EventType.PAYMENT_STEP_UP_PASSED,
                    user=user,
                    details=_audit_details(payment, method=method),
                )
                _sca_applied(user)
                try:
                    with transaction.atomic():
                        _post(payment, _lock_for(payment))
                except PaymentRefused as exc:
                    _end(payment, status=Payment.Status.REFUSED, reason=exc.code, event=EventType.PAYMENT_REFUSED)
                    error = exc
    if error is not None:
        raise error
    return payment


def payments_expire_pending(*, limit: int = 500) -> int:
    """Beat task body: pending payments past their step-up window become expired (audited)."""
    now = timezone.now()
    done = 0
    ids = list(
        Payment.objects.filter(status=Payment.Status.PENDING_STEP_UP, step_up_expires_at__lte=now).values_list(
            "id", flat=True
        )[:limit]
    )
    for payment_id in ids:
        with transaction.atomic():
            payment = (
                Payment.objects.select_for_update(skip_locked=True)
                .select_related("owner")
                .filter(id=payment_id, status=Payment.Status.PENDING_STEP_UP, step_up_expires_at__lte=now)
                .first()
            )
            if payment is None:
                continue
            _end(payment, status=Payment.Status.EXPIRED, reason="step_up_expired", event=EventType.PAYMENT_EXPIRED)
            done += 1
    return done


def _live_code_method(*, user: User, purpose: str, binding: str) -> str | None:
    from mfa.models import CodeChallenge

    live = (
        CodeChallenge.objects.filter(
            user=user,
            purpose=purpose,
            binding=binding,
            used_at__isnull=True,
            voided_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .order_by("-created_at")
        .first()
    )
    return live.method if live is not None else None


def default_confirm_method(*, user: User, payment_id: object) -> str:
    """The method a confirmation without `method` uses: the channel of the last code sent for
    this payment if it is still live, else TOTP."""
    payment = Payment.objects.filter(owner=user, id=_as_uuid(payment_id)).only("binding_digest").first()
    if payment is not None and payment.binding_digest:
        live = _live_code_method(user=user, purpose="payment", binding=payment.binding_digest)
        if live:
            return live
    return "totp"


def _first_code_method(user: User) -> str:
    """Without a live code: TOTP if enrolled, else the first method that can confirm with a code."""
    methods = _code_methods(user)
    return "totp" if "totp" in methods or not methods else methods[0]


def default_trust_method(*, user: User, beneficiary_id: object) -> str:
    beneficiary = Beneficiary.objects.filter(owner=user, id=_as_uuid(beneficiary_id)).first()
    if beneficiary is not None:
        live = _live_code_method(user=user, purpose=TRUST_PURPOSE, binding=trust_digest(beneficiary))
        if live:
            return live
    return _first_code_method(user)


def default_order_method(*, user: User, order_id: object) -> str:
    order = StandingOrder.objects.filter(owner=user, id=_as_uuid(order_id)).first()
    if order is not None:
        live = _live_code_method(user=user, purpose=STANDING_ORDER_PURPOSE, binding=sca.standing_order_digest(order))
        if live:
            return live
    return _first_code_method(user)


def idempotency_prune() -> int:
    """Forgets idempotency keys older than PAYMENT_IDEMPOTENCY_KEY_HOURS (the payments stay)."""
    cutoff = timezone.now() - timedelta(hours=settings.PAYMENT_IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- Codes bound to what they authorise (trusting a payee, a standing order) -------------------

CODE_CONFIRM_METHODS = ("totp", "sms", "email")


def _code_methods(user: User) -> list[str]:
    """The methods that confirm a trust or a standing order with a code (passkeys: payments only)."""
    return [m for m in step_up_methods(user=user) if m in CODE_CONFIRM_METHODS]


def _send_bound(*, user: User, method: str, purpose: str, binding: str, summary: str) -> Any:
    from mfa import services as mfa

    if method not in ("sms", "email"):
        raise PaymentError('Choose "sms" or "email".', code="invalid_method", field="method")
    try:
        return mfa.code_send(user=user, method=method, purpose=purpose, binding=binding, summary=summary)
    except (mfa.ResendTooSoon, mfa.TooManyCodes) as exc:
        raise StepUpThrottled(
            "Please wait before asking for another code.", code="throttled", retry_at=getattr(exc, "retry_at", None)
        ) from exc
    except mfa.MethodUnavailable as exc:
        raise PaymentError("This method is not available for you.", code="method_unavailable", field="method") from exc
    except mfa.SecondFactorLocked as exc:
        raise StepUpThrottled(
            "Too many wrong codes: try again later.", code="locked", retry_at=getattr(exc, "retry_at", None)
        ) from exc


def _verify_bound(*, user: User, method: str, code: str, purpose: str, binding: str) -> tuple[str, int] | None:
    """Checks a code bound to `binding`; returns (failure, attempts left) for a wrong code
    ("invalid_code") or none live ("challenge_expired"), None when it verified. Unavailable methods
    and the MFA lock raise."""
    from mfa import services as mfa

    method = (method or "").strip().lower() or "totp"
    if method not in CODE_CONFIRM_METHODS:
        raise PaymentError('Choose "totp", "sms" or "email".', code="invalid_method", field="method")
    if not str(code or "").strip():
        raise PaymentError("Enter the code.", code="invalid_code", field="code")
    try:
        mfa.code_verify(user=user, method=method, code=str(code).strip(), purpose=purpose, binding=binding)
    except mfa.InvalidCode as exc:
        return "invalid_code", int(getattr(exc, "attempts_left", 0) or 0)
    except mfa.ChallengeExpired:
        return "challenge_expired", 0
    except mfa.MethodUnavailable as exc:
        raise PaymentError("This method is not available for you.", code="method_unavailable", field="method") from exc
    except mfa.SecondFactorLocked as exc:
        raise StepUpThrottled(
            "Too many wrong codes: try again later.", code="locked", retry_at=getattr(exc, "retry_at", None)
        ) from exc
    return None


# --- Trusted beneficiaries (RTS Art. 13) --------------------------------------------------------

TRUST_PURPOSE = "beneficiary_trust"


@dataclass(frozen=True)
class ConfirmationPending:
    """A confirmation with a second factor is awaited (trusting a payee, a standing order)."""

    challenge_id: str
    methods: list[str]
    expires_at: datetime
    sent_to: str = ""
    email_fallback: bool = False


def trust_digest(beneficiary: Beneficiary) -> str:
    """What a code for trusting a payee is bound to: the customer, the payee, its name and IBAN."""
    return keyed_hash(
        f"{beneficiary.owner_id}|{beneficiary.id}|{beneficiary.name}|{beneficiary.iban}",
        purpose="payments.beneficiary-trust-binding",
    )


def _own_beneficiary(*, user: User, beneficiary_id: object, lock: bool = False) -> Beneficiary:
    rows = Beneficiary.objects.filter(owner=user, id=_as_uuid(beneficiary_id))
    found = (rows.select_for_update() if lock else rows).first()
    if found is None:
        raise PaymentNotFound("Beneficiary not found.", code="not_found")
    return found


def _beneficiary_details(beneficiary: Beneficiary, **extra: Any) -> dict[str, Any]:
    return {"beneficiary": str(beneficiary.id), "iban": _mask_iban(beneficiary.iban), **extra}


def beneficiary_trust_begin(
    *, request: Any, user: User, beneficiary_id: object, method: str = ""
) -> ConfirmationPending:
    """Marking a payee as trusted needs a recent re-authentication and then SCA: a second factor
    bound to this payee (a code sent now when `method` is sms/email, or a TOTP code)."""
    _require_recent_auth(request=request)
    methods = _code_methods(user)
    if not methods:
        raise SecondFactorRequired(
            "Trusting a beneficiary needs a second factor: set one up on the Security page first.",
            code="second_factor_required",
        )
    sent_to = ""
    with transaction.atomic():
        beneficiary = _own_beneficiary(user=user, beneficiary_id=beneficiary_id, lock=True)
        if beneficiary.is_trusted:
            raise PaymentError("This beneficiary is already trusted.", code="already_trusted")
        beneficiary.trust_challenge_id = uuid.uuid4()
        beneficiary.trust_expires_at = timezone.now() + timedelta(seconds=settings.PAYMENT_STEP_UP_TTL_SECONDS)
        beneficiary.save(update_fields=["trust_challenge_id", "trust_expires_at"])
        audit.record(
            type=EventType.BENEFICIARY_TRUST_REQUESTED,
            user=user,
            outcome=Outcome.INFO,
            details=_beneficiary_details(beneficiary, challenge=str(beneficiary.trust_challenge_id)),
        )
    if method:
        challenge = beneficiary_trust_send(user=user, beneficiary_id=beneficiary.id, method=method)
        sent_to = str(getattr(challenge, "sent_to", ""))
    return ConfirmationPending(
        challenge_id=str(beneficiary.trust_challenge_id),
        methods=methods,
        expires_at=beneficiary.trust_expires_at,
        sent_to=sent_to,
        email_fallback=email_fallback_only(user=user, methods=methods),
    )


def _trust_pending(beneficiary: Beneficiary) -> None:
    if beneficiary.trust_challenge_id is None or beneficiary.trust_expires_at is None:
        raise PaymentGone("Ask to trust this beneficiary first.", code="trust_not_requested")
    if timezone.now() >= beneficiary.trust_expires_at:
        raise PaymentGone("The time to confirm has run out: ask again.", code="trust_expired")


def beneficiary_trust_send(*, user: User, beneficiary_id: object, method: str) -> Any:
    beneficiary = _own_beneficiary(user=user, beneficiary_id=beneficiary_id)
    _trust_pending(beneficiary)
    return _send_bound(
        user=user,
        method=method,
        purpose=TRUST_PURPOSE,
        binding=trust_digest(beneficiary),
        summary=f"trusting the beneficiary {beneficiary.name} (IBAN {beneficiary.iban}): payments to it will "
        "no longer ask for a code",
    )


def _bound_code_refused(failure: str, attempts_left: int) -> StepUpInvalid:
    """The refusal of a wrong or missing code bound to a payee's trust or a standing order."""
    message = "The code is not correct." if failure == "invalid_code" else "There is no valid code: ask for a new one."
    return StepUpInvalid(message, attempts_left=attempts_left)


def beneficiary_trust_confirm(*, user: User, beneficiary_id: object, method: str, code: str) -> Beneficiary:
    """The second factor bound to this payee marks it as trusted (SCA applied: counters reset)."""
    error: PaymentError | None = None
    with transaction.atomic():
        beneficiary = _own_beneficiary(user=user, beneficiary_id=beneficiary_id, lock=True)
        _trust_pending(beneficiary)
        failed = _verify_bound(
            user=user, method=method, code=code, purpose=TRUST_PURPOSE, binding=trust_digest(beneficiary)
        )
        if failed is not None:
            failure, left = failed
            audit.record(
                type=EventType.BENEFICIARY_TRUST_FAILED,
                user=user,
                outcome=Outcome.FAILURE,
                reason=failure,
                details=_beneficiary_details(beneficiary, method=method),
            )
            error = _bound_code_refused(failure, left)
        else:
            beneficiary.trusted_at = timezone.now()
            beneficiary.trusted_iban = beneficiary.iban
            beneficiary.trust_challenge_id = None
            beneficiary.trust_expires_at = None
            beneficiary.save(update_fields=["trusted_at", "trusted_iban", "trust_challenge_id", "trust_expires_at"])
            _sca_applied(user)
            audit.record(
                type=EventType.BENEFICIARY_TRUSTED,
                user=user,
                details=_beneficiary_details(beneficiary, method=method, article="RTS Art. 13"),
            )
            email_enqueue(
                to=user.email,
                template="beneficiary_trusted",
                context={"user": user, "beneficiary": beneficiary, "when": beneficiary.trusted_at},
                purpose="beneficiary_trusted",
                user=user,
            )
    if error is not None:
        raise error
    return beneficiary


def beneficiary_untrust(*, user: User, beneficiary_id: object) -> Beneficiary:
    """Removing trust needs no SCA (it makes payments stricter)."""
    with transaction.atomic():
        beneficiary = _own_beneficiary(user=user, beneficiary_id=beneficiary_id, lock=True)
        was = beneficiary.is_trusted
        beneficiary.trusted_at = None
        beneficiary.trusted_iban = ""
        beneficiary.trust_challenge_id = None
        beneficiary.trust_expires_at = None
        beneficiary.save(update_fields=["trusted_at", "trusted_iban", "trust_challenge_id", "trust_expires_at"])
        if was:
            audit.record(type=EventType.BENEFICIARY_UNTRUSTED, user=user, details=_beneficiary_details(beneficiary))
    return beneficiary


def beneficiary_change(*, request: Any, user: User, beneficiary_id: object, name: str, iban: str) -> Beneficiary:
    """Changes a payee's name or IBAN (needs a recent re-authentication). A new IBAN drops the trust:
    it was given to the old one."""
    _require_recent_auth(request=request)
    name = _clean_name(name)
    iban = iban_normalize(iban)
    with transaction.atomic():
        beneficiary = _own_beneficiary(user=user, beneficiary_id=beneficiary_id, lock=True)
        if iban != beneficiary.iban and Beneficiary.objects.filter(owner=user, iban=iban).exists():
            raise PaymentError("You already saved this IBAN.", code="duplicate_beneficiary", field="iban")
        was_trusted = beneficiary.is_trusted
        old_iban = beneficiary.iban
        beneficiary.name = name
        beneficiary.iban = iban
        beneficiary.save()
        beneficiary.refresh_from_db()
        dropped = was_trusted and not beneficiary.is_trusted
        audit.record(
            type=EventType.BENEFICIARY_CHANGED,
            user=user,
            details=_beneficiary_details(
                beneficiary, old_iban=_mask_iban(old_iban), iban_changed=old_iban != iban, trust_dropped=dropped
            ),
        )
        if dropped:
            audit.record(
                type=EventType.BENEFICIARY_UNTRUSTED,
                user=user,
                reason="iban_changed",
                details=_beneficiary_details(beneficiary),
            )
    return beneficiary


# --- Standing orders (RTS Art. 14) --------------------------------------------------------------

STANDING_ORDER_PURPOSE = "standing_order"


def _next_run(order: StandingOrder, after: datetime) -> datetime:
    if order.frequency == StandingOrder.Frequency.WEEKLY:
        return after + timedelta(days=7)
    month = after.month % 12 + 1
    year = after.year + (1 if after.month == 12 else 0)
    day = min(after.day, 28)
    return after.replace(year=year, month=month, day=day)


def standing_order_summary(order: StandingOrder) -> str:
    payee = f"{order.payee_name} (IBAN {order.payee_iban})" if order.payee_name else f"IBAN {order.payee_iban}"
    return (
        f"standing order of {Decimal(order.amount).quantize(CENT)} {order.currency} "
        f"{order.get_frequency_display().lower()} to {payee}"
    )


def _own_order(*, user: User, order_id: object, lock: bool = False) -> StandingOrder:
    rows = StandingOrder.objects.filter(owner=user, id=_as_uuid(order_id)).select_related("from_account", "owner")
    found = (rows.select_for_update(of=("self",)) if lock else rows).first()
    if found is None:
        raise PaymentNotFound("Standing order not found.", code="not_found")
    return found


def _order_details(order: StandingOrder, **extra: Any) -> dict[str, Any]:
    return {
        "standing_order": str(order.id),
        "account": str(order.from_account_id),
        "amount": str(order.amount),
        "currency": order.currency,
        "payee": _mask_iban(order.payee_iban),
        "frequency": order.frequency,
        **extra,
    }


def _order_pending(order: StandingOrder) -> ConfirmationPending:
    methods = _code_methods(order.owner)
    return ConfirmationPending(
        challenge_id=str(order.sca_challenge_id),
        methods=methods,
        expires_at=order.sca_expires_at,  # type: ignore[arg-type]
        email_fallback=email_fallback_only(user=order.owner, methods=methods),
    )


def _ask_sca(order: StandingOrder) -> None:
    order.status = StandingOrder.Status.PENDING_SCA
    order.sca_challenge_id = uuid.uuid4()
    order.sca_expires_at = timezone.now() + timedelta(seconds=settings.STANDING_ORDER_SCA_TTL_SECONDS)


def _clean_frequency(frequency: object) -> str:
    value = str(frequency or "").strip().lower()
    if value not in StandingOrder.Frequency.values:
        raise PaymentError('Choose "weekly" or "monthly".', code="invalid_frequency", field="frequency")
    return value


def standing_order_create(
    *,
    user: User,
    from_account: object,
    amount: object,
    currency: object,
    frequency: object,
    beneficiary: object = None,
    to_iban: object = None,
    payee_name: object = "",
    reference: object = "",
) -> tuple[StandingOrder, ConfirmationPending]:
    """A new series waits for SCA; its first execution runs at that confirmation (Art. 14(1))."""
    value = parse_amount(amount)
    source = own_account(user=user, account_id=from_account)
    if str(currency or "").strip().upper() != source.currency:
        raise PaymentError(
            f"This account holds {source.currency}; the order must be in {source.currency}.",
            code="currency_mismatch",
            field="currency",
        )
    freq = _clean_frequency(frequency)
    reference_text = _clean_reference(reference)
    payee, iban, name, _internal = _resolve_payee(
        user=user, source=source, beneficiary_id=beneficiary, to_iban=to_iban, payee_name=payee_name
    )
    if not _code_methods(user):
        raise SecondFactorRequired(
            "A standing order needs a confirmation with a second factor: set one up on the Security page first.",
            code="second_factor_required",
        )
    with transaction.atomic():
        order = StandingOrder(
            owner=user,
            from_account=source,
            beneficiary=payee,
            payee_name=name,
            payee_iban=iban,
            amount=value,
            currency=source.currency,
            reference=reference_text,
            frequency=freq,
        )
        _ask_sca(order)
        order.save()
        audit.record(type=EventType.STANDING_ORDER_CREATED, user=user, details=_order_details(order))
    return order, _order_pending(order)


def standing_order_change(
    *, user: User, order_id: object, amount: object = None, frequency: object = None, reference: object = None
) -> tuple[StandingOrder, ConfirmationPending]:
    """Changing the amount, frequency or reference needs SCA again; the order pauses until then."""
    with transaction.atomic():
        order = _own_order(user=user, order_id=order_id, lock=True)
        if order.status == StandingOrder.Status.CANCELLED:
            raise PaymentGone("This standing order was cancelled.", code="standing_order_cancelled")
        changes: dict[str, str] = {}
        if amount is not None and str(amount).strip():
            value = parse_amount(amount)
            if value != order.amount:
                changes["amount"] = str(value)
                order.amount = value
        if frequency is not None and str(frequency).strip():
            freq = _clean_frequency(frequency)
            if freq != order.frequency:
                changes["frequency"] = freq
                order.frequency = freq
        if reference is not None:
            text = _clean_reference(reference)
            if text != order.reference:
                changes["reference"] = "changed"
                order.reference = text
        if not changes:
            raise PaymentError("Nothing to change.", code="no_change")
        _ask_sca(order)
        order.changed_at = timezone.now()
        order.save()
        audit.record(type=EventType.STANDING_ORDER_CHANGED, user=user, details=_order_details(order, changes=changes))
    return order, _order_pending(order)


def standing_order_send(*, user: User, order_id: object, method: str) -> Any:
    order = _own_order(user=user, order_id=order_id)
    _order_check_pending(order)
    return _send_bound(
        user=user,
        method=method,
        purpose=STANDING_ORDER_PURPOSE,
        binding=sca.standing_order_digest(order),
        summary=standing_order_summary(order),
    )


def _order_check_pending(order: StandingOrder) -> None:
    if order.status != StandingOrder.Status.PENDING_SCA:
        raise PaymentGone("This standing order is not waiting for confirmation.", code="standing_order_not_pending")
    if order.sca_expires_at is None or timezone.now() >= order.sca_expires_at:
        raise PaymentGone("The time to confirm has run out: change or create it again.", code="step_up_expired")


def standing_order_confirm(*, user: User, order_id: object, method: str, code: str) -> StandingOrder:
    """SCA bound to the order's terms authorises the series; a new series runs its first execution
    now (Art. 14(1): the first execution needs SCA, this is it). Later ones run from beat, exempt."""
    error: PaymentError | None = None
    with transaction.atomic():
        order = _own_order(user=user, order_id=order_id, lock=True)
        _order_check_pending(order)
        digest = sca.standing_order_digest(order)
        failed = _verify_bound(user=user, method=method, code=code, purpose=STANDING_ORDER_PURPOSE, binding=digest)
        if failed is not None:
            failure, left = failed
            audit.record(
                type=EventType.STANDING_ORDER_SCA_FAILED,
                user=user,
                outcome=Outcome.FAILURE,
                reason=failure,
                details=_order_details(order, method=method),
            )
            error = _bound_code_refused(failure, left)
        else:
            now = timezone.now()
            order.status = StandingOrder.Status.ACTIVE
            order.authorised_digest = digest
            order.authorised_at = now
            order.sca_challenge_id = None
            order.sca_expires_at = None
            first = order.executions == 0
            if first:
                order.next_run_at = now
            order.save()
            _sca_applied(user)
            audit.record(
                type=EventType.STANDING_ORDER_AUTHORISED,
                user=user,
                details=_order_details(order, method=method, article="RTS Art. 14"),
            )
            if first:
                first_sca = sca.ScaDecision(
                    required=True,
                    exemption=None,
                    article="RTS Art. 14(1)",
                    reasons=("standing_order_first_execution",),
                )
                _standing_order_execute(order, decision=first_sca, sca_done=True)
    if error is not None:
        raise error
    order.refresh_from_db()
    return order


def standing_order_cancel(*, user: User, order_id: object) -> StandingOrder:
    with transaction.atomic():
        order = _own_order(user=user, order_id=order_id, lock=True)
        if order.status != StandingOrder.Status.CANCELLED:
            order.status = StandingOrder.Status.CANCELLED
            order.next_run_at = None
            order.save(update_fields=["status", "next_run_at"])
            audit.record(type=EventType.STANDING_ORDER_CANCELLED, user=user, details=_order_details(order))
    return order


def _standing_order_execute(
    order: StandingOrder, *, decision: sca.ScaDecision | None = None, sca_done: bool = False
) -> Payment | None:
    """One execution, inside the caller's transaction with the order locked. A refusal (funds,
    limits, terms no longer authorised) is audited and the order moves on to its next date."""
    user = order.owner
    now = timezone.now()
    payment: Payment | None = None
    try:
        with transaction.atomic():
            source = own_account(user=user, account_id=order.from_account_id)
            _payee, iban, name, internal = _resolve_payee(
                user=user, source=source, beneficiary_id=None, to_iban=order.payee_iban, payee_name=order.payee_name
            )
            payment, _, _ = _payment_new(
                user=user,
                source=source,
                value=order.amount,
                payee=order.beneficiary,
                iban=iban,
                name=order.payee_name or name,
                internal=internal,
                reference_text=order.reference,
                channel=Payment.Channel.STANDING_ORDER,
                payer=PayerContext(device="unknown"),
                standing_order=order,
                decision=decision,
                sca_done=sca_done,
            )
    except PaymentError as exc:
        order.last_failure = exc.code[:64]
        audit.record(
            type=EventType.STANDING_ORDER_FAILED,
            user=user,
            outcome=Outcome.DENIED,
            reason=exc.code,
            details=_order_details(order),
        )
    else:
        order.executions += 1
        order.last_failure = ""
        audit.record(
            type=EventType.STANDING_ORDER_EXECUTED,
            user=user,
            details=_order_details(order, payment=str(payment.id), execution=order.executions),
        )
    order.last_run_at = now
    order.next_run_at = _next_run(order, order.next_run_at or now)
    order.save(update_fields=["executions", "last_failure", "last_run_at", "next_run_at"])
    return payment


def standing_orders_run(*, limit: int = 500) -> int:
    """Beat task body: every active order that is due runs once (Art. 14: exempt when its terms are
    those authorised with SCA and it ran once already)."""
    now = timezone.now()
    done = 0
    ids = list(
        StandingOrder.objects.filter(status=StandingOrder.Status.ACTIVE, next_run_at__lte=now)
        .order_by("next_run_at")
        .values_list("id", flat=True)[:limit]
    )
    for order_id in ids:
        with transaction.atomic():
            order = (
                StandingOrder.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("owner", "from_account", "beneficiary")
                .filter(id=order_id, status=StandingOrder.Status.ACTIVE, next_run_at__lte=now)
                .first()
            )
            if order is None:
                continue
            _standing_order_execute(order)
            done += 1
    return done


# --- Fraud reports (RTS Art. 19), the TRA threshold they allow and Art. 20 ---------------------


def payment_report_fraud(*, user: User, payment_id: object, actor: User | None = None, reason: str = "") -> Payment:
    """Marks a completed payment as unauthorised: the customer ("this wasn't me") or staff (actor).
    It counts in the fraud rate at once; if the rate now exceeds a band's reference, the
    transaction-risk-analysis exemption stops for that band and the security team is told."""
    source = "staff" if actor is not None and actor.pk != user.pk else "customer"
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .filter(owner=user, id=_as_uuid(payment_id))
            .select_related("owner")
            .first()
        )
        if payment is None:
            raise PaymentNotFound("Payment not found.", code="not_found")
        if payment.status != Payment.Status.COMPLETED:
            raise PaymentError("Only a completed payment can be reported.", code="payment_not_completed")
        if payment.fraud_reported_at is not None:
            raise PaymentError("This payment was already reported.", code="already_reported")
        payment.fraud_reported_at = timezone.now()
        payment.fraud_reported_by = actor or user
        payment.save(update_fields=["fraud_reported_at", "fraud_reported_by"])
        audit.record(
            type=EventType.PAYMENT_FRAUD_REPORTED,
            user=user,
            actor=actor or user,
            outcome=Outcome.INFO,
            reason=(reason or source)[:255],
            details=_audit_details(
                payment, source=source, exemption=payment.sca_exemption or None, article=payment.sca_article
            ),
        )
        fraud_monitor_check()
    return payment


def fraud_monitor_check() -> Decimal | None:
    """Measures the fraud rate; when the threshold it allows drops below the last one (a band's
    reference exceeded), audits payment.tra_suspended and emails the security group (Art. 20)."""
    rate = sca.fraud_rate()
    allowed = sca.threshold_for(rate.percent)
    FraudMonitor.objects.bulk_create(
        [FraudMonitor(id=1, allowed_threshold=max((e for e, _ in settings.SCA_TRA_BANDS), default=None))],
        ignore_conflicts=True,
    )
    monitor = FraudMonitor.objects.select_for_update().get(id=1)
    previous = monitor.allowed_threshold
    lowered = (previous or Decimal(0)) > (allowed or Decimal(0))
    monitor.allowed_threshold = allowed
    monitor.measured_at = timezone.now()
    monitor.save(update_fields=["allowed_threshold", "measured_at"])
    if lowered:
        stopped = [str(e) for e, ref in settings.SCA_TRA_BANDS if rate.percent > ref]
        audit.record(
            type=EventType.PAYMENT_TRA_SUSPENDED,
            outcome=Outcome.DENIED,
            reason=f"fraud rate {rate.percent}% exceeds the reference",
            details={
                "fraud_rate_percent": str(rate.percent),
                "fraud_value": str(rate.fraud),
                "total_value": str(rate.total),
                "previous_threshold": str(previous) if previous is not None else None,
                "allowed_threshold": str(allowed) if allowed is not None else None,
                "bands_stopped": stopped,
                "article": "RTS Art. 20",
            },
        )
        _tell_security_team(rate=rate, allowed=allowed, stopped=stopped)
    return allowed


def _tell_security_team(*, rate: sca.FraudRate, allowed: Decimal | None, stopped: list[str]) -> None:
    from django.contrib.auth import get_user_model

    team = get_user_model().objects.filter(groups__name="security", is_active=True).distinct()
    for member in team:
        email_enqueue(
            to=member.email,
            template="tra_suspended",
            context={"user": member, "rate": rate, "allowed": allowed, "stopped": stopped},
            purpose="tra_suspended",
            user=member,
        )


# --- Account information (RTS Art. 10) -----------------------------------------------------------


def account_access_sca_record(*, user: User, auth_time: datetime) -> None:
    """A session authenticated with a second factor saw the accounts: Art. 10's 90 days start again."""
    ScaState.objects.bulk_create([ScaState(user=user)], ignore_conflicts=True)
    ScaState.objects.filter(user=user).filter(Q(account_sca_at__isnull=True) | Q(account_sca_at__lt=auth_time)).update(
        account_sca_at=auth_time
    )
