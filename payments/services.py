"""Bank accounts and money movement. Payments, beneficiaries and step-up live here too."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from statistics import median
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from accounts.models import User
from audit.events import EventType, Outcome
from audit.services import record
from core.crypto import constant_time_equals, keyed_hash
from notifications.services import email_enqueue
from payments.ledger import CENT, lock_accounts, posting_create
from payments.models import BankAccount, Beneficiary, IdempotencyRecord, Payment, Posting


class PaymentError(Exception):
    """A refusal with a message safe to show the customer.

    `code` is the machine code of the API's error body, `field` the form/body field it belongs
    to (if any) and `status` the HTTP status the API answers with.
    """

    status = 400

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


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
        record(
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
        super().__init__(message, code="invalid_code", field="code")
        self.attempts_left = attempts_left


class StepUpThrottled(PaymentError):
    """Codes are sent too often, or the second factor is locked (429)."""

    status = 429

    def __init__(self, message: str, *, code: str, retry_at: datetime | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_at = retry_at


class IdempotencyConflict(PaymentError):
    status = 409


class PaymentRefused(PaymentError):
    """A refusal on the payment's merits (funds, daily limit): audited as payment.refused."""


# --- IBANs and beneficiaries ----------------------------------------------------------


def iban_normalize(raw: object, *, field: str = "iban") -> str:
    """The electronic form of an IBAN whose country format and check digits are valid."""
    text = str(raw or "").strip()
    if not text or len(text) > 50:
        raise PaymentError("Enter an IBAN, e.g. DE89 3704 0044 0532 0130 00.", code="invalid_iban", field=field)
    try:
        return str(IBAN(text).compact)
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


def _api_login_time(request: Any) -> float | None:
    """When the API login behind this access token proved its credentials (epoch seconds).

    That is the creation of the login (`sid`, a UserSession of kind mobile): password and
    second factor are checked just before it starts, and refreshing tokens does not renew it.
    """
    from accounts.models import UserSession

    claims = getattr(request, "auth", None)
    if claims is None:
        return None
    getter = getattr(claims, "get", None)
    explicit = getter("auth_time") if getter is not None else getattr(claims, "auth_time", None)
    if isinstance(explicit, (int, float)):
        return float(explicit)
    sid = getter("sid") if getter is not None else getattr(claims, "sid", None)
    if not sid or _as_uuid(sid) == NIL_UUID:
        return None
    created = (
        UserSession.objects.filter(id=_as_uuid(sid), user=getattr(request, "user", None), ended_at__isnull=True)
        .values_list("created_at", flat=True)
        .first()
    )
    return created.timestamp() if created is not None else None


def _require_recent_auth(*, request: Any, channel: str) -> None:
    from mfa.reauth import ReauthRequired, require_recent_auth

    if channel == Payment.Channel.WEB:
        require_recent_auth(request=request)
        return
    max_age = getattr(settings, "REAUTH_MAX_AGE_SECONDS", 300)
    login_time = _api_login_time(request)
    if login_time is None or timezone.now().timestamp() - login_time > max_age:
        raise ReauthRequired()


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
        _require_recent_auth(request=request, channel=channel)
    with transaction.atomic():
        if Beneficiary.objects.filter(owner=user, iban=iban).exists():
            raise PaymentError("You already saved this IBAN.", code="duplicate_beneficiary", field="iban")
        beneficiary = Beneficiary.objects.create(owner=user, name=name, iban=iban)
        record(
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
    payment: Payment
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


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
    """The factors that can confirm a payment (recovery codes cannot: they are not bound to it)."""
    from mfa import services as mfa

    return [m for m in mfa.methods_for(user=user) if m in STEP_UP_METHODS]


class SecondFactorRequired(PaymentRefused):
    """A payment needing step-up from a customer with no factor that can confirm it (403)."""

    status = 403


def request_hash(data: dict[str, Any]) -> str:
    """A stable digest of a request body, to tell a replay from a different request."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _unusual_reasons(*, user: User, account: BankAccount, amount: Decimal, payee_iban: str) -> list[str]:
    reasons = []
    recent = list(
        Payment.objects.filter(from_account=account, status=Payment.Status.COMPLETED)
        .order_by("-created_at")
        .values_list("amount", flat=True)[:20]
    )
    if len(recent) >= settings.PAYMENT_UNUSUAL_MIN_HISTORY:
        typical = median(recent)
        if amount > typical * settings.PAYMENT_UNUSUAL_FACTOR:
            reasons.append("unusual_amount")
    since = timezone.now() - timedelta(hours=settings.PAYMENT_NEW_BENEFICIARY_HOURS)
    if (
        Beneficiary.objects.filter(owner=user, iban=payee_iban, created_at__gte=since).exists()
        and not Payment.objects.filter(owner=user, payee_iban=payee_iban, status=Payment.Status.COMPLETED).exists()
    ):
        reasons.append("new_beneficiary")
    return reasons


def _day_total(account: BankAccount) -> Decimal:
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    total = Payment.objects.filter(
        from_account=account,
        status__in=[Payment.Status.COMPLETED, Payment.Status.PENDING_STEP_UP],
        created_at__gte=start,
    ).aggregate(total=Sum("amount"))["total"]
    return Decimal(total or 0)


def _credit_account(payment: Payment) -> BankAccount:
    if payment.payee_account_id:
        return payment.payee_account  # type: ignore[return-value]
    return internal_account(kind=BankAccount.Kind.CLEARING, currency=payment.currency)


def _post(payment: Payment, accounts: dict[str, BankAccount]) -> None:
    """Writes the ledger entries of a payment whose accounts are locked; marks it completed."""
    source = accounts[str(payment.from_account_id)]
    target = accounts[str(_credit_account(payment).id)]
    if source.balance < payment.amount:
        raise PaymentRefused("There is not enough money in the account.", code="insufficient_funds", field="amount")
    posting = posting_create(
        kind=Posting.Kind.PAYMENT,
        description=f"Payment {payment.id} to {payment.payee_iban}",
        lines=[(source, -payment.amount), (target, payment.amount)],
        locked=True,
    )
    payment.posting = posting
    payment.status = Payment.Status.COMPLETED
    payment.completed_at = timezone.now()
    payment.save(update_fields=["posting", "status", "completed_at"])
    record(
        type=EventType.PAYMENT_COMPLETED,
        user=payment.owner,
        details=_audit_details(payment),
    )
    if payment.amount > settings.STEP_UP_THRESHOLD:
        email_enqueue(
            to=payment.owner.email,
            template="payment_completed",
            context={"user": payment.owner, "payment": payment, "when": payment.completed_at},
            purpose="payment_completed",
            user=payment.owner,
        )


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
    return lock_accounts([payment.from_account_id, _credit_account(payment).id])


def _resolve_payee(
    *, user: User, source: BankAccount, beneficiary_id: object, to_iban: object, payee_name: object
) -> tuple[Beneficiary | None, str, str, BankAccount | None]:
    beneficiary = None
    if beneficiary_id and to_iban:
        raise PaymentError("Choose a saved beneficiary or enter an IBAN, not both.", code="invalid_payee")
    if beneficiary_id:
        beneficiary = Beneficiary.objects.filter(owner=user, id=_as_uuid(beneficiary_id)).first()
        if beneficiary is None:
            raise PaymentNotFound("Beneficiary not found.", code="not_found", field="beneficiary")
        iban, name = beneficiary.iban, beneficiary.name
    elif to_iban:
        iban = iban_normalize(to_iban, field="to_iban")
        name = _clean_name(payee_name, field="payee_name") if payee_name else ""
    else:
        raise PaymentError("Choose a beneficiary or enter an IBAN.", code="invalid_payee", field="to_iban")
    if iban == source.iban:
        raise PaymentError("You cannot pay an account into itself.", code="same_account", field="to_iban")
    internal = BankAccount.objects.filter(iban=iban, kind=BankAccount.Kind.CUSTOMER, is_active=True).first()
    if internal is None:
        parsed = IBAN(iban)
        if parsed.country_code == settings.BANK_IBAN_COUNTRY and parsed.bank_code == settings.BANK_CODE:
            raise PaymentError(
                f"No account with this IBAN exists at {settings.BANK_NAME}.", code="unknown_account", field="to_iban"
            )
    elif internal.currency != source.currency:
        raise PaymentError("The payee's account holds another currency.", code="currency_mismatch", field="currency")
    if not name and internal is not None:
        name = internal.name if internal.owner_id == user.pk else ""
    return beneficiary, iban, name, internal


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
    return PaymentOutcome(
        payment=record_row.payment,
        status_code=record_row.response_status,
        body=record_row.response_body,
        replayed=True,
    )


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
) -> PaymentOutcome:
    """Validates and creates a payment. At or below the threshold and not unusual it is executed at
    once (201); otherwise it waits for a step-up bound to its digest (202).

    With `idempotency_key`, the first accepted response is stored with the payment in one
    transaction: the same key and body replay it, another body is a conflict (409). Refusals are
    not stored, so a retry after fixing the cause goes through.
    """
    from payments.selectors import payment_representation

    if idempotency_key:
        existing = IdempotencyRecord.objects.select_related("payment").filter(owner=user, key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, body_hash)
    value = parse_amount(amount)
    source = own_account(user=user, account_id=from_account)
    currency_code = str(currency or "").strip().upper()
    if currency_code != source.currency:
        raise PaymentError(
            f"This account holds {source.currency}; the payment must be in {source.currency}.",
            code="currency_mismatch",
            field="currency",
        )
    reference_text = " ".join(str(reference or "").split())
    if len(reference_text) > 140 or any(not ch.isprintable() for ch in reference_text):
        raise PaymentError("Use at most 140 printable characters.", code="invalid_reference", field="reference")
    payee, iban, name, internal = _resolve_payee(
        user=user, source=source, beneficiary_id=beneficiary, to_iban=to_iban, payee_name=payee_name
    )
    clearing = None if internal else internal_account(kind=BankAccount.Kind.CLEARING, currency=source.currency)
    try:
        with transaction.atomic():
            idem = None
            if idempotency_key:
                try:
                    with transaction.atomic():
                        idem = IdempotencyRecord.objects.create(owner=user, key=idempotency_key, request_hash=body_hash)
                except IntegrityError:
                    # a concurrent request with the same key committed first
                    existing = IdempotencyRecord.objects.select_related("payment").get(owner=user, key=idempotency_key)
                    return _replay(existing, body_hash)
            accounts = lock_accounts([source.id, (internal or clearing).id])  # type: ignore[union-attr]
            locked_source = accounts[str(source.id)]
            if locked_source.balance < value:
                raise PaymentRefused(
                    "There is not enough money in the account.", code="insufficient_funds", field="amount"
                )
            if _day_total(locked_source) + value > settings.PAYMENT_DAILY_LIMIT:
                raise PaymentRefused(
                    f"This payment would exceed the account's daily limit of "
                    f"{settings.PAYMENT_DAILY_LIMIT} {source.currency}.",
                    code="daily_limit",
                    field="amount",
                )
            reasons = []
            if value > settings.STEP_UP_THRESHOLD:
                reasons.append("above_threshold")
            reasons += _unusual_reasons(user=user, account=locked_source, amount=value, payee_iban=iban)
            methods = step_up_methods(user=user) if reasons else []
            if reasons and not methods:
                raise SecondFactorRequired(
                    "This payment needs a confirmation with a second factor: set one up on the Security page first.",
                    code="second_factor_required",
                )
            payment = Payment(
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
                status=Payment.Status.PENDING_STEP_UP if reasons else Payment.Status.COMPLETED,
                step_up_reasons=reasons,
            )
            if reasons:
                payment.binding_digest = payment_digest(payment)
                payment.step_up_challenge_id = uuid.uuid4()
                payment.step_up_expires_at = timezone.now() + timedelta(seconds=settings.PAYMENT_STEP_UP_TTL_SECONDS)
            payment.save()
            record(type=EventType.PAYMENT_CREATED, user=user, details=_audit_details(payment, channel=channel))
            if reasons:
                record(
                    type=EventType.PAYMENT_STEP_UP_ISSUED,
                    user=user,
                    outcome=Outcome.INFO,
                    reason=",".join(reasons),
                    details=_audit_details(payment, challenge=str(payment.step_up_challenge_id)),
                )
            else:
                _post(payment, accounts)
            status_code = 202 if reasons else 201
            body = payment_representation(payment, methods=methods if reasons else None)
            if idem is not None:
                idem.payment = payment
                idem.response_status = status_code
                idem.response_body = body
                idem.save(update_fields=["payment", "response_status", "response_body"])
    except PaymentRefused as exc:
        record(
            type=EventType.PAYMENT_REFUSED,
            user=user,
            outcome=Outcome.DENIED,
            reason=exc.code,
            details={
                "account": str(source.id),
                "amount": str(value),
                "currency": source.currency,
                "payee": _mask_iban(iban),
                "stage": "create",
            },
        )
        raise
    return PaymentOutcome(payment=payment, status_code=status_code, body=body)


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
    record(
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
        record(
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
                record(
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
                record(
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
                record(
                    type=EventType.PAYMENT_STEP_UP_PASSED,
                    user=user,
                    details=_audit_details(payment, method=method),
                )
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


def default_confirm_method(*, user: User, payment_id: object) -> str:
    """The method a confirmation without `method` uses: the channel of the last code sent for
    this payment if it is still live, else TOTP."""
    from mfa.models import CodeChallenge

    payment = Payment.objects.filter(owner=user, id=_as_uuid(payment_id)).only("binding_digest").first()
    if payment is not None and payment.binding_digest:
        live = (
            CodeChallenge.objects.filter(
                user=user,
                purpose="payment",
                binding=payment.binding_digest,
                used_at__isnull=True,
                voided_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .order_by("-created_at")
            .first()
        )
        if live is not None:
            return live.method
    return "totp"


def idempotency_prune() -> int:
    """Forgets idempotency keys older than PAYMENT_IDEMPOTENCY_KEY_HOURS (the payments stay)."""
    cutoff = timezone.now() - timedelta(hours=settings.PAYMENT_IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
