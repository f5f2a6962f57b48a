"""Read queries about a user's second factors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Model

from mfa.models import EmailFactor, MFAState, RecoveryCodeSet, SMSFactor, TOTPFactor, WebAuthnCredential

# Method name -> model. Order is the display order and the fallback preference.
FACTOR_MODELS: dict[str, Any] = {
    "webauthn": WebAuthnCredential,
    "totp": TOTPFactor,
    "sms": SMSFactor,
    "email": EmailFactor,
    "recovery": RecoveryCodeSet,
}
AMR_BY_METHOD = {"totp": "otp", "webauthn": "hwk", "sms": "sms", "email": "email", "recovery": "rec"}
METHOD_LABELS = {
    "totp": "Authenticator app",
    "webauthn": "Passkey",
    "sms": "Text message",
    "email": "Email code",
    "recovery": "Recovery codes",
}


def strong_only(*, user: Any) -> bool:
    """Staff and the configured groups must use TOTP or passkeys (plus recovery codes)."""
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return True
    groups = set(settings.MFA_REQUIRED_GROUPS)
    return bool(groups) and user.groups.filter(name__in=groups).exists()


def mfa_required_by_policy(*, user: Any) -> bool:
    return strong_only(user=user)


def allowed_methods(*, user: Any) -> list[str]:
    if strong_only(user=user):
        return [m for m in FACTOR_MODELS if m in settings.MFA_STRONG_METHODS or m == "recovery"]
    return list(FACTOR_MODELS)


def confirmed_factors(*, user: Any, method: str) -> Any:
    model = FACTOR_MODELS[method]
    return model.objects.filter(user=user, confirmed=True)


def methods_for(*, user: Any) -> list[str]:
    """Usable, verified factors; recovery codes only alongside another factor and with codes left."""
    if user is None or not getattr(user, "pk", None):
        return []
    methods: list[str] = []
    for method in allowed_methods(user=user):
        if method == "recovery":
            continue
        if confirmed_factors(user=user, method=method).exists():
            methods.append(method)
    if methods and RecoveryCodeSet.objects.filter(user=user, confirmed=True, codes__used_at__isnull=True).exists():
        methods.append("recovery")
    return methods


def has_strong_factor(*, user: Any) -> bool:
    return any(
        confirmed_factors(user=user, method=m).exists()
        for m in ("totp", "webauthn")
        if m in settings.MFA_STRONG_METHODS
    )


def state_for(*, user: Any) -> MFAState | None:
    return MFAState.objects.filter(user=user).first()


def preferred_method(*, user: Any) -> str | None:
    methods = [m for m in methods_for(user=user) if m != "recovery"]
    if not methods:
        return None
    state = state_for(user=user)
    if state is not None and state.preferred_method in methods:
        return state.preferred_method
    return methods[0]


def locked_until(*, user: Any) -> datetime | None:
    from django.utils import timezone

    state = state_for(user=user)
    if state is not None and state.locked_until is not None and state.locked_until > timezone.now():
        return state.locked_until
    return None


@dataclass
class FactorRow:
    method: str
    label: str
    device: Model
    name: str
    detail: str
    created_at: datetime | None
    last_used_at: datetime | None


def factor_rows(*, user: Any) -> list[FactorRow]:
    """Every confirmed factor of the user, for the security page."""
    rows: list[FactorRow] = []
    for method, model in FACTOR_MODELS.items():
        for device in model.objects.filter(user=user, confirmed=True).order_by("id"):
            detail = ""
            if method in ("sms", "email"):
                detail = device.masked_destination
            elif method == "recovery":
                detail = f"{device.remaining} of {settings.MFA_RECOVERY_CODE_COUNT} left"
            rows.append(
                FactorRow(
                    method=method,
                    label=METHOD_LABELS[method],
                    device=device,
                    name=device.name,
                    detail=detail,
                    created_at=getattr(device, "created_at", None),
                    last_used_at=getattr(device, "last_used_at", None),
                )
            )
    return rows
