"""Second factors: enrolment, verification, out-of-band codes, passkeys, recovery codes.

The public functions other areas call are listed in HELPERS_INTERFACES.md (methods_for,
preferred_method, has_second_factor, code_send, code_verify, webauthn_begin_assertion,
webauthn_finish_assertion, mfa_reset). Enrolment, removal and the preferred method are
changed only after a recent re-authentication (mfa.reauth.require_recent_auth), checked here
as well as in the views.

Failures are counted in a transaction of their own that commits before the exception is
raised, so a wrong code is never "rolled back" by the refusal it causes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidJSONStructure, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from accounts.authn import require_recent_auth
from audit.events import EventType, Outcome
from audit.services import record
from core.crypto import keyed_hash
from core.errors import DomainError
from mfa import selectors
from mfa.models import (
    CODE_HASH_PURPOSE,
    RECOVERY_HASH_PURPOSE,
    CodeChallenge,
    EmailFactor,
    MFAState,
    RecoveryCode,
    RecoveryCodeSet,
    SMSFactor,
    TOTPFactor,
    WebAuthnCredential,
)
from notifications.services import email_enqueue, sms_enqueue

METHODS = ("totp", "webauthn", "sms", "email", "recovery")
CODE_METHODS = ("sms", "email")

# What a code authorises, in the words of the message, when the caller gives no summary.
PURPOSE_TEXT = {
    "login": "sign in to your account",
    "reauth": "confirm it is you before a security change",
    "enrol_sms": "add this phone number as a second factor",
    "enrol_email": "turn on email codes as a second factor",
    "payment": "approve a payment",
}


class MFAError(DomainError):
    """A refusal from the MFA services: a message safe to show the user, a code and an HTTP status."""

    code = "mfa_error"
    status = 400
    default_message = "The second factor could not be verified."


class InvalidCode(MFAError):
    code = "invalid_code"
    status = 401
    default_message = "That code is not correct."

    def __init__(self, attempts_left: int = 0, message: str = "") -> None:
        self.attempts_left = max(0, attempts_left)
        super().__init__(message or None, attempts_left=self.attempts_left)


class ChallengeExpired(MFAError):
    code = "challenge_expired"
    status = 401
    default_message = "This code has expired or was already used. Please request a new one."


class SecondFactorLocked(MFAError):
    code = "mfa_locked"
    status = 429

    def __init__(self, retry_at: datetime) -> None:
        super().__init__(
            f"Too many wrong codes. For your security, second-factor sign-in is paused until {retry_at:%H:%M} UTC.",
            retry_at=retry_at,
        )


class ResendTooSoon(MFAError):
    code = "resend_too_soon"
    status = 429

    def __init__(self, retry_at: datetime) -> None:
        seconds = max(1, int((retry_at - timezone.now()).total_seconds()))
        super().__init__(f"A code was just sent. You can ask for another in {seconds} seconds.", retry_at=retry_at)


class TooManyCodes(MFAError):
    code = "too_many_codes"
    status = 429

    def __init__(self, retry_at: datetime) -> None:
        super().__init__(
            f"Too many codes were sent in the last hour. Try again after {retry_at:%H:%M} UTC.", retry_at=retry_at
        )


class MethodUnavailable(MFAError):
    code = "method_unavailable"
    default_message = "This method is not available for your account."


class FactorNotFound(MethodUnavailable):
    """No such factor of this user (someone else's is "not found" too)."""

    code = "not_found"
    status = 404
    default_message = "That factor was not found."


class EnrolmentError(MFAError):
    code = "enrolment_failed"
    default_message = "The factor could not be added."


# --- Reads other areas use ---------------------------------------------------------------


def methods_for(*, user: Any) -> list[str]:
    return selectors.methods_for(user=user)


def preferred_method(*, user: Any) -> str | None:
    return selectors.preferred_method(user=user)


def has_second_factor(*, user: Any) -> bool:
    return bool(selectors.methods_for(user=user))


# --- Failure counting and the lock -------------------------------------------------------


def _state_for_update(user: Any) -> MFAState:
    state, _ = MFAState.objects.select_for_update().get_or_create(user=user)
    return state


def _raise_if_locked(user: Any, *, method: str, purpose: str) -> None:
    until = selectors.locked_until(user=user)
    if until is not None:
        record(
            type=EventType.MFA_FAILED,
            outcome=Outcome.DENIED,
            user=user,
            reason="locked",
            details={"method": method, "purpose": purpose},
        )
        raise SecondFactorLocked(until)


def _failure(user: Any, *, method: str, purpose: str, reason: str) -> tuple[int, datetime | None]:
    """Counts one wrong code; returns (consecutive failures left before the lock, lock end)."""
    with transaction.atomic():
        state = _state_for_update(user)
        state.consecutive_failures += 1
        limit = settings.MFA_LOCK_AFTER_FAILURES
        record(
            type=EventType.MFA_FAILED,
            outcome=Outcome.FAILURE,
            user=user,
            reason=reason,
            details={"method": method, "purpose": purpose, "consecutive": state.consecutive_failures},
        )
        locked: datetime | None = None
        if state.consecutive_failures >= limit:
            locked = timezone.now() + timedelta(minutes=settings.MFA_LOCK_MINUTES)
            state.locked_until = locked
            state.consecutive_failures = 0
            record(
                type=EventType.MFA_LOCKED,
                outcome=Outcome.DENIED,
                user=user,
                reason=f"{limit} consecutive wrong codes",
                details={"method": method, "purpose": purpose, "minutes": settings.MFA_LOCK_MINUTES},
            )
            email_enqueue(
                to=user.email,
                template="mfa_locked",
                context={"user": user, "until": locked, "minutes": settings.MFA_LOCK_MINUTES},
                purpose="mfa_locked",
                user=user,
            )
        state.save(update_fields=["consecutive_failures", "locked_until"])
        return max(0, limit - state.consecutive_failures) if locked is None else 0, locked


_VERIFIED_DEVICE_ATTR = "_mfa_verified_device"


def verified_device(*, user: Any) -> Any:
    """The factor that the last successful verification on this user object used (this request)."""
    return getattr(user, _VERIFIED_DEVICE_ATTR, None)


def _success(user: Any, *, method: str, purpose: str, device: Any = None, touched: bool = False) -> str:
    """A right answer: the failure counter starts again, the factor is marked used, audited.

    `touched`: the factor already recorded its use (TOTP's last_t, a recovery code). One UPDATE of
    the counter, and only when the state this request loaded (or none loaded) may hold failures.
    """
    from accounts.pipeline import loaded_related

    with transaction.atomic(savepoint=False):
        loaded, state = loaded_related(user, "mfa_state")
        if not loaded or (state is not None and (state.consecutive_failures or state.locked_until)):
            MFAState.objects.filter(user=user).filter(
                Q(consecutive_failures__gt=0) | Q(locked_until__isnull=False)
            ).update(consecutive_failures=0, locked_until=None)
            if state is not None:
                state.consecutive_failures, state.locked_until = 0, None
        if device is not None and hasattr(device, "last_used_at") and not touched:
            type(device).objects.filter(pk=device.pk).update(last_used_at=timezone.now())
        if device is not None:
            setattr(user, _VERIFIED_DEVICE_ATTR, device)
        record(
            type=EventType.MFA_VERIFIED,
            user=user,
            details={"method": method, "purpose": purpose, "device": getattr(device, "pk", None)},
        )
    return selectors.AMR_BY_METHOD[method]


def _check_method_allowed(user: Any, method: str) -> None:
    if method not in METHODS or method not in selectors.allowed_methods(user=user):
        raise MethodUnavailable


# --- Out-of-band codes (SMS, email) ------------------------------------------------------


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _code_message(*, code: str, purpose: str, summary: str) -> str:
    what = summary or PURPOSE_TEXT.get(purpose, "confirm a request")
    minutes = max(1, settings.MFA_CODE_TTL_SECONDS // 60)
    return (
        f"{settings.BANK_NAME}: {code} is your code to {what}. It expires in {minutes} minutes. "
        f"Never share it: we will never ask you for it."
    )


def _code_send(
    *,
    user: Any,
    method: str,
    purpose: str,
    binding: str,
    summary: str,
    factor: SMSFactor | EmailFactor | _VerifiedAddress,
) -> CodeChallenge:
    now = timezone.now()
    with transaction.atomic():
        _state_for_update(user)  # serialises sends for this user
        last = CodeChallenge.objects.filter(user=user, purpose=purpose).order_by("-created_at").first()
        if last is not None:
            retry_at = last.created_at + timedelta(seconds=settings.MFA_CODE_RESEND_COOLDOWN_SECONDS)
            if retry_at > now:
                raise ResendTooSoon(retry_at)
        window_start = now - timedelta(hours=1)
        recent = CodeChallenge.objects.filter(user=user, created_at__gt=window_start).order_by("created_at")
        first = recent.first() if recent.count() >= settings.MFA_CODE_HOURLY_CAP else None
    if first is not None:
        record(
            type=EventType.RATE_LIMITED,
            outcome=Outcome.DENIED,
            user=user,
            reason="mfa_code_hourly_cap",
            details={"method": method, "purpose": purpose},
        )
        raise TooManyCodes(first.created_at + timedelta(hours=1))
    with transaction.atomic():
        _state_for_update(user)
        CodeChallenge.objects.filter(
            user=user, purpose=purpose, used_at__isnull=True, voided_at__isnull=True, expires_at__gt=now
        ).update(voided_at=now)
        code = _new_code()
        text = _code_message(code=code, purpose=purpose, summary=summary)
        if isinstance(factor, SMSFactor):
            message = sms_enqueue(to=factor.phone, body=text, purpose=f"mfa_code:{purpose}"[:64], user=user)
        else:
            message = email_enqueue(
                to=factor.email,
                template="mfa_code",
                context={
                    "user": user,
                    "code": code,
                    "what": summary or PURPOSE_TEXT.get(purpose, "confirm a request"),
                    "minutes": max(1, settings.MFA_CODE_TTL_SECONDS // 60),
                },
                purpose=f"mfa_code:{purpose}"[:64],
                user=user,
            )
        challenge = CodeChallenge.objects.create(
            user=user,
            method=method,
            purpose=purpose,
            binding=binding,
            code_hash=keyed_hash(code, purpose=CODE_HASH_PURPOSE),
            sent_to=factor.masked_destination,
            factor_id=factor.pk,
            outbox_message_id=message.id,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.MFA_CODE_TTL_SECONDS),
        )
        record(
            type=EventType.MFA_CODE_SENT,
            user=user,
            details={"method": method, "purpose": purpose, "challenge": str(challenge.id)},
        )
    return challenge


class _VerifiedAddress:
    """The sign-up address as a code destination, for a user with no email factor."""

    pk = None

    def __init__(self, user: Any) -> None:
        self.email = user.email
        self.masked_destination = user.masked_email


def _code_destination(*, user: Any, method: str, purpose: str) -> SMSFactor | EmailFactor | _VerifiedAddress:
    factor = selectors.confirmed_factors(user=user, method=method).order_by("id").first()
    if factor is not None and method in selectors.allowed_methods(user=user):
        return factor
    if method == "email" and selectors.verified_address_code_allowed(user=user, purpose=purpose):
        return _VerifiedAddress(user)
    raise MethodUnavailable


def code_send(*, user: Any, method: str, purpose: str, binding: str = "", summary: str = "") -> CodeChallenge:
    """Sends a 6-digit code by SMS or email: hashed, 5 minutes, 3 attempts, single use, bound.

    The one one-time-code mechanism: login second factor, risky-login code, re-authentication,
    payment and payee step-up. A user with no email factor gets the code at the verified sign-up
    address when selectors.verified_address_code_allowed says so (risky login; step-up fallback).
    """
    if method not in CODE_METHODS:
        raise MethodUnavailable
    if method not in METHODS:
        raise MethodUnavailable
    destination = _code_destination(user=user, method=method, purpose=purpose)
    until = selectors.locked_until(user=user)
    if until is not None:
        raise SecondFactorLocked(until)
    return _code_send(user=user, method=method, purpose=purpose, binding=binding, summary=summary, factor=destination)


def _challenge_verify(*, user: Any, method: str, code: str, purpose: str, binding: str) -> CodeChallenge:
    """Checks a code against the live challenge; counts failures. Returns the used challenge."""
    code = "".join(ch for ch in str(code) if ch.isdigit())
    now = timezone.now()
    error: MFAError | None = None
    with transaction.atomic(savepoint=False):
        challenge = (
            CodeChallenge.objects.select_for_update()
            .filter(user=user, purpose=purpose, method=method, used_at__isnull=True, voided_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if challenge is None or challenge.expires_at <= now:
            error = ChallengeExpired()
        elif not secrets.compare_digest(challenge.binding, binding):
            error = ChallengeExpired("This code was issued for something else. Please request a new one.")
        elif challenge.attempts >= settings.MFA_CHALLENGE_MAX_ATTEMPTS:
            error = ChallengeExpired()
        elif code and challenge.matches(code):
            challenge.used_at = now
            challenge.save(update_fields=["used_at"])
            return challenge
        else:
            challenge.attempts += 1
            if challenge.attempts >= settings.MFA_CHALLENGE_MAX_ATTEMPTS:
                challenge.voided_at = now
            challenge.save(update_fields=["attempts", "voided_at"])
            left = settings.MFA_CHALLENGE_MAX_ATTEMPTS - challenge.attempts
            error = InvalidCode(
                left,
                "That code is not correct."
                + (f" {left} attempt{'s' if left != 1 else ''} left." if left else " Please request a new code."),
            )
        if isinstance(error, ChallengeExpired):
            record(
                type=EventType.MFA_FAILED,
                outcome=Outcome.FAILURE,
                user=user,
                reason="challenge_expired",
                details={"method": method, "purpose": purpose},
            )
    if isinstance(error, InvalidCode):
        _left, locked = _failure(user, method=method, purpose=purpose, reason="wrong_code")
        if locked is not None:
            raise SecondFactorLocked(locked)
    assert error is not None
    raise error


def code_verify(*, user: Any, method: str, code: str, purpose: str, binding: str = "") -> str:
    """Verifies a TOTP, SMS, email or recovery code; returns its amr value."""
    if method not in ("totp", "sms", "email", "recovery"):
        raise MethodUnavailable
    enrolled = method in selectors.methods_for(user=user)
    if method in CODE_METHODS:
        # A code sent to the verified address (no email factor) is as good as its challenge.
        fallback = method == "email" and selectors.verified_address_code_allowed(user=user, purpose=purpose)
        if not enrolled and not fallback:
            raise MethodUnavailable
    elif not enrolled:
        raise MethodUnavailable
    _raise_if_locked(user, method=method, purpose=purpose)
    if method in CODE_METHODS:
        challenge = _challenge_verify(user=user, method=method, code=code, purpose=purpose, binding=binding)
        device = (
            selectors.confirmed_factors(user=user, method=method).filter(pk=challenge.factor_id).first()
            if challenge.factor_id is not None
            else None
        )
        return _success(user, method=method, purpose=purpose, device=device)
    with transaction.atomic(savepoint=False):
        for device in selectors.confirmed_factors(user=user, method=method).select_for_update().order_by("id"):
            if device.verify_token(code):
                return _success(user, method=method, purpose=purpose, device=device, touched=True)
    left, locked = _failure(user, method=method, purpose=purpose, reason="wrong_code")
    if locked is not None:
        raise SecondFactorLocked(locked)
    raise InvalidCode(left)


def delivery_delayed(*, challenge: CodeChallenge) -> bool:
    """The provider refused or has not yet taken the message (it stays queued for retry)."""
    from notifications.models import OutboxMessage

    if challenge.outbox_message_id is None:
        return False
    message = OutboxMessage.objects.filter(id=challenge.outbox_message_id).first()
    if message is None or message.status == OutboxMessage.Status.SENT:
        return False
    if message.status == OutboxMessage.Status.FAILED or message.last_error or message.attempts:
        return True
    late_after = timedelta(seconds=settings.MFA_CODE_LATE_AFTER_SECONDS)
    return bool(timezone.now() - message.created_at >= late_after)


# --- Passkeys (WebAuthn) -----------------------------------------------------------------


def _wa_key(user: Any, purpose: str) -> str:
    return f"mfa:webauthn:{user.pk}:{purpose}"


def _descriptors(user: Any) -> list[PublicKeyCredentialDescriptor]:
    result = []
    for cred in WebAuthnCredential.objects.filter(user=user, confirmed=True):
        transports = []
        for value in cred.transports or []:
            try:
                transports.append(AuthenticatorTransport(value))
            except ValueError:
                continue
        result.append(
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(cred.credential_id), transports=transports or None)
        )
    return result


def _parse_credential(credential: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(credential, str):
        try:
            parsed = json.loads(credential)
        except ValueError as exc:
            raise InvalidCode(0, "The passkey response could not be read.") from exc
    else:
        parsed = credential
    if not isinstance(parsed, dict):
        raise InvalidCode(0, "The passkey response could not be read.")
    return parsed


def webauthn_begin_registration(*, request: HttpRequest, user: Any) -> dict[str, Any]:
    require_recent_auth(request=request)
    _check_method_allowed(user, "webauthn")
    options = generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_id=user.public_id.bytes,
        user_name=user.email,
        user_display_name=user.full_name or user.email,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(user),
        timeout=settings.WEBAUTHN_CHALLENGE_TTL_SECONDS * 1000,
    )
    cache.set(
        _wa_key(user, "register"),
        {"challenge": bytes_to_base64url(options.challenge), "binding": ""},
        timeout=settings.WEBAUTHN_CHALLENGE_TTL_SECONDS,
    )
    data: dict[str, Any] = json.loads(options_to_json(options))
    return data


def webauthn_finish_registration(
    *, request: HttpRequest, user: Any, credential: dict[str, Any] | str, name: str = ""
) -> WebAuthnCredential:
    require_recent_auth(request=request)
    _check_method_allowed(user, "webauthn")
    state = cache.get(_wa_key(user, "register"))
    cache.delete(_wa_key(user, "register"))
    if not state:
        raise EnrolmentError("The passkey request expired. Please try again.")
    parsed = _parse_credential(credential)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=base64url_to_bytes(state["challenge"]),
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGIN,
            require_user_verification=True,
        )
    except (InvalidRegistrationResponse, InvalidJSONStructure, KeyError, ValueError, TypeError) as exc:
        record(
            type=EventType.MFA_FAILED,
            outcome=Outcome.FAILURE,
            user=user,
            reason="passkey_registration_invalid",
            details={"method": "webauthn", "purpose": "enrol"},
        )
        raise EnrolmentError("The passkey could not be registered.") from exc
    transports = parsed.get("response", {}).get("transports") or []
    with transaction.atomic():
        cred_id = bytes_to_base64url(verified.credential_id)
        if WebAuthnCredential.objects.filter(credential_id=cred_id).exists():
            raise EnrolmentError("This passkey is already registered.")
        device = WebAuthnCredential.objects.create(
            user=user,
            name=(name or "Passkey")[:64],
            confirmed=True,
            credential_id=cred_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=[str(t) for t in transports][:8],
            aaguid=str(verified.aaguid)[:64],
            backed_up=verified.credential_backed_up,
        )
        _enrolled(user=user, method="webauthn", device=device)
    return device


def webauthn_begin_assertion(*, user: Any, purpose: str, binding: str = "") -> dict[str, Any]:
    """Options for navigator.credentials.get; with a binding, the challenge is sha256(binding + nonce)."""
    _check_method_allowed(user, "webauthn")
    descriptors = _descriptors(user)
    if not descriptors:
        raise MethodUnavailable
    _raise_if_locked(user, method="webauthn", purpose=purpose)
    nonce = secrets.token_bytes(32)
    challenge = hashlib.sha256(binding.encode() + nonce).digest() if binding else nonce
    options = generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        challenge=challenge,
        allow_credentials=descriptors,
        user_verification=UserVerificationRequirement.REQUIRED,
        timeout=settings.WEBAUTHN_CHALLENGE_TTL_SECONDS * 1000,
    )
    cache.set(
        _wa_key(user, purpose),
        {"challenge": bytes_to_base64url(challenge), "binding": binding},
        timeout=settings.WEBAUTHN_CHALLENGE_TTL_SECONDS,
    )
    data: dict[str, Any] = json.loads(options_to_json(options))
    return data


def webauthn_finish_assertion(*, user: Any, credential: dict[str, Any] | str, purpose: str, binding: str = "") -> str:
    """Verifies an assertion against the challenge of (user, purpose); returns "hwk"."""
    _check_method_allowed(user, "webauthn")
    _raise_if_locked(user, method="webauthn", purpose=purpose)
    state = cache.get(_wa_key(user, purpose))
    cache.delete(_wa_key(user, purpose))
    parsed = _parse_credential(credential)
    reason = ""
    device: WebAuthnCredential | None = None
    if not state:
        reason = "challenge_expired"
    elif not secrets.compare_digest(str(state.get("binding", "")), binding):
        reason = "binding_mismatch"
    else:
        cred_id = str(parsed.get("rawId") or parsed.get("id") or "")
        device = WebAuthnCredential.objects.filter(user=user, confirmed=True, credential_id=cred_id).first()
        if device is None:
            reason = "unknown_credential"
        else:
            try:
                verified = verify_authentication_response(
                    credential=parsed,
                    expected_challenge=base64url_to_bytes(state["challenge"]),
                    expected_rp_id=settings.WEBAUTHN_RP_ID,
                    expected_origin=settings.WEBAUTHN_ORIGIN,
                    credential_public_key=bytes(device.public_key),
                    credential_current_sign_count=device.sign_count,
                    require_user_verification=True,
                )
            except (InvalidAuthenticationResponse, InvalidJSONStructure, KeyError, ValueError, TypeError):
                reason = "assertion_invalid"
            else:
                WebAuthnCredential.objects.filter(pk=device.pk).update(
                    sign_count=verified.new_sign_count, backed_up=verified.credential_backed_up
                )
    if reason:
        left, locked = _failure(user, method="webauthn", purpose=purpose, reason=reason)
        if locked is not None:
            raise SecondFactorLocked(locked)
        raise InvalidCode(left, "The passkey could not be verified. Please try again.")
    return _success(user, method="webauthn", purpose=purpose, device=device)


# --- Enrolment, removal, naming, preference ----------------------------------------------


def _notify_change(*, user: Any, template: str, method: str, name: str) -> None:
    email_enqueue(
        to=user.email,
        template=template,
        context={
            "user": user,
            "method": selectors.METHOD_LABELS.get(method, method),
            "name": name,
            "when": timezone.now(),
        },
        purpose=template,
        user=user,
    )


def _enrolled(*, user: Any, method: str, device: Any) -> None:
    state = _state_for_update(user)
    if not state.preferred_method and method != "recovery":
        state.preferred_method = method
        state.save(update_fields=["preferred_method"])
    record(type=EventType.MFA_ENROLLED, user=user, details={"method": method, "device": device.pk})
    _notify_change(user=user, template="mfa_enrolled", method=method, name=device.name)


def totp_enrol_begin(*, request: HttpRequest, user: Any) -> TOTPFactor:
    """A new, unconfirmed authenticator; it becomes usable after one correct code."""
    require_recent_auth(request=request)
    _check_method_allowed(user, "totp")
    with transaction.atomic():
        TOTPFactor.objects.filter(user=user, confirmed=False).delete()
        device = TOTPFactor(user=user, name="Authenticator app", confirmed=False)
        device.set_key(secrets.token_hex(20))
        device.save()
    return device


def totp_enrol_confirm(*, request: HttpRequest, user: Any, device_id: int, code: str, name: str = "") -> TOTPFactor:
    require_recent_auth(request=request)
    _check_method_allowed(user, "totp")
    with transaction.atomic():
        device = TOTPFactor.objects.select_for_update().filter(user=user, pk=device_id, confirmed=False).first()
        if device is None:
            raise EnrolmentError("This set-up has expired. Please start again.")
        if not device.verify_token(code):
            raise InvalidCode(0, "That code is not correct. Check the time on your phone and try the newest code.")
        device.confirmed = True
        device.name = (name or "Authenticator app")[:64]
        device.save(update_fields=["confirmed", "name"])
        _enrolled(user=user, method="totp", device=device)
    return device


def totp_enrol_seeded(*, user: Any, name: str = "Demo authenticator") -> TOTPFactor:
    """An already confirmed TOTP factor, for `seed_demo` only (no request, so no re-authentication).

    Returns the existing seeded factor when there is one, so the printed secret stays valid.
    """
    with transaction.atomic():
        device = TOTPFactor.objects.filter(user=user, confirmed=True, name=name).first()
        if device is not None:
            return device
        device = TOTPFactor(user=user, name=name, confirmed=True)
        device.set_key(secrets.token_hex(20))
        device.save()
        state = _state_for_update(user)
        if not state.preferred_method:
            state.preferred_method = "totp"
            state.save(update_fields=["preferred_method"])
        record(
            type=EventType.MFA_ENROLLED, user=user, reason="seed_demo", details={"method": "totp", "device": device.pk}
        )
    return device


def code_factor_enrol_begin(*, request: HttpRequest, user: Any, method: str, phone: str = "") -> CodeChallenge:
    """Sends a code to a new phone number (sms) or to the account's email (email)."""
    require_recent_auth(request=request)
    if method not in CODE_METHODS:
        raise MethodUnavailable
    _check_method_allowed(user, method)
    with transaction.atomic():
        factor: SMSFactor | EmailFactor
        if method == "sms":
            if SMSFactor.objects.filter(user=user, confirmed=True).exists():
                raise EnrolmentError("You already have a phone number for codes. Remove it first.")
            SMSFactor.objects.filter(user=user, confirmed=False).delete()
            factor = SMSFactor.objects.create(user=user, name="Text message", phone=phone, confirmed=False)
        else:
            if EmailFactor.objects.filter(user=user, confirmed=True).exists():
                raise EnrolmentError("Email codes are already on.")
            EmailFactor.objects.filter(user=user, confirmed=False).delete()
            factor = EmailFactor.objects.create(user=user, name="Email", email=user.email, confirmed=False)
    return _code_send(
        user=user, method=method, purpose=f"enrol_{method}", binding=str(factor.pk), summary="", factor=factor
    )


def code_factor_enrol_confirm(
    *, request: HttpRequest, user: Any, method: str, code: str, name: str = ""
) -> SMSFactor | EmailFactor:
    require_recent_auth(request=request)
    if method not in CODE_METHODS:
        raise MethodUnavailable
    _check_method_allowed(user, method)
    model = SMSFactor if method == "sms" else EmailFactor
    factor = model.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if factor is None:
        raise EnrolmentError("This set-up has expired. Please start again.")
    _challenge_verify(user=user, method=method, code=code, purpose=f"enrol_{method}", binding=str(factor.pk))
    with transaction.atomic():
        factor.confirmed = True
        factor.name = (name or factor.name)[:64]
        factor.save(update_fields=["confirmed", "name"])
        if method == "sms":
            get_user_model().objects.filter(pk=user.pk, phone=factor.phone).update(phone_verified=True)
            from accounts.usercache import user_changed

            user_changed(user)  # an update() sends no signal: the cached row (bearer requests) goes stale now
        _enrolled(user=user, method=method, device=factor)
    return factor


def _recovery_code() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def recovery_codes_generate(*, request: HttpRequest | None, user: Any, actor: Any = None) -> list[str]:
    """A new set of recovery codes (shown once); the old set stops working. `request` None: seed only."""
    if request is not None:
        require_recent_auth(request=request)
    codes = [_recovery_code() for _ in range(settings.MFA_RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        _state_for_update(user)
        RecoveryCodeSet.objects.filter(user=user).delete()
        code_set = RecoveryCodeSet.objects.create(user=user, name="Recovery codes", confirmed=True)
        RecoveryCode.objects.bulk_create(
            RecoveryCode(
                code_set=code_set, code_hash=keyed_hash(RecoveryCodeSet.normalise(c), purpose=RECOVERY_HASH_PURPOSE)
            )
            for c in codes
        )
        record(
            type=EventType.MFA_RECOVERY_CODES_GENERATED,
            user=user,
            actor=actor or user,
            details={"count": len(codes), "device": code_set.pk},
        )
        _notify_change(user=user, template="mfa_enrolled", method="recovery", name="New recovery codes")
    return codes


def _factor(user: Any, method: str, device_id: int) -> Any:
    if method not in selectors.FACTOR_MODELS:
        raise FactorNotFound
    device = selectors.FACTOR_MODELS[method].objects.filter(user=user, pk=device_id, confirmed=True).first()
    if device is None:
        raise FactorNotFound
    return device


def factor_remove(*, request: HttpRequest, user: Any, method: str, device_id: int) -> None:
    require_recent_auth(request=request)
    with transaction.atomic():
        state = _state_for_update(user)
        device = _factor(user, method, device_id)
        if selectors.mfa_required_by_policy(user=user) and method in ("totp", "webauthn"):
            others = sum(
                selectors.confirmed_factors(user=user, method=m).exclude(pk=device.pk if m == method else None).count()
                for m in ("totp", "webauthn")
            )
            if others == 0:
                raise EnrolmentError("Your role requires an authenticator app or a passkey. Add another one first.")
        name = device.name
        device.delete()
        remaining = [m for m in selectors.methods_for(user=user) if m != "recovery"]
        if not remaining:
            RecoveryCodeSet.objects.filter(user=user).delete()
        if state.preferred_method and state.preferred_method not in remaining:
            state.preferred_method = remaining[0] if remaining else ""
            state.save(update_fields=["preferred_method"])
        record(type=EventType.MFA_REMOVED, user=user, details={"method": method, "device": device_id})
        _notify_change(user=user, template="mfa_removed", method=method, name=name)


def factor_rename(*, user: Any, method: str, device_id: int, name: str) -> None:
    name = " ".join(name.split())[:64]
    if not name:
        raise EnrolmentError("Please give the factor a name.")
    with transaction.atomic():
        device = _factor(user, method, device_id)
        device.name = name
        device.save(update_fields=["name"])
        record(type=EventType.MFA_RENAMED, user=user, details={"method": method, "device": device_id})


def preferred_set(*, request: HttpRequest, user: Any, method: str) -> None:
    require_recent_auth(request=request)
    if method == "recovery" or method not in selectors.methods_for(user=user):
        raise MethodUnavailable
    with transaction.atomic():
        state = _state_for_update(user)
        previous = state.preferred_method
        state.preferred_method = method
        state.save(update_fields=["preferred_method"])
        record(type=EventType.MFA_PREFERRED_CHANGED, user=user, details={"method": method, "previous": previous})


def enrol_prompt_dismiss(*, user: Any) -> None:
    with transaction.atomic():
        state = _state_for_update(user)
        state.enrol_prompt_dismissed_at = timezone.now()
        state.save(update_fields=["enrol_prompt_dismissed_at"])


def mfa_reset(*, user: Any, actor: Any, reason: str) -> None:
    """Staff reset: removes every factor of the user (e.g. a lost phone), ends the lock; audited."""
    if actor is None or not getattr(actor, "is_staff", False):
        raise MFAError("Only staff can reset second factors.")
    with transaction.atomic():
        state = _state_for_update(user)
        for model in selectors.FACTOR_MODELS.values():
            model.objects.filter(user=user).delete()
        CodeChallenge.objects.filter(user=user, used_at__isnull=True, voided_at__isnull=True).update(
            voided_at=timezone.now()
        )
        state.preferred_method = ""
        state.consecutive_failures = 0
        state.locked_until = None
        state.save(update_fields=["preferred_method", "consecutive_failures", "locked_until"])
        record(type=EventType.MFA_RESET_BY_STAFF, user=user, actor=actor, reason=reason[:255])
        _notify_change(user=user, template="mfa_removed", method="all", name="All second factors (reset by the bank)")
