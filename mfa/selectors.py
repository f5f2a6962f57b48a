"""Read queries about a user's second factors."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
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


@functools.cache
def _methods_sql(groups: int) -> str:
    """One statement answering every question methods_for asks: an EXISTS per factor kind, for
    an unused recovery code, and (with `groups` names) for membership of a policy group.

    Plain SQL built once from the models' metadata: the ORM spends more CPU compiling five
    EXISTS subqueries than PostgreSQL spends answering them, and this runs on every login and
    every GET /api/v1/me. Portable (SQLite in dev): EXISTS, IN and a boolean column.
    """
    from django.contrib.auth.models import Group

    from mfa.models import RecoveryCode

    def col(model: Any, field: str) -> str:
        return f'"{model._meta.get_field(field).column}"'

    parts = []
    for method, model in FACTOR_MODELS.items():
        if method != "recovery":
            parts.append(
                f'EXISTS (SELECT 1 FROM "{model._meta.db_table}" WHERE {col(model, "user")} = %s '  # noqa: S608  # nosec B608 - identifiers from model metadata; values are parameters
                f"AND {col(model, 'confirmed')})"
            )
    codes, sets = RecoveryCode, RecoveryCodeSet
    parts.append(
        f'EXISTS (SELECT 1 FROM "{sets._meta.db_table}" s JOIN "{codes._meta.db_table}" c '  # noqa: S608  # nosec B608 - identifiers from model metadata; values are parameters
        f'ON c.{col(codes, "code_set")} = s."{sets._meta.pk.column}" '
        f"WHERE s.{col(sets, 'user')} = %s AND s.{col(sets, 'confirmed')} AND c.{col(codes, 'used_at')} IS NULL)"
    )
    if groups:
        through = get_user_model().groups.through
        user_col = next(f.column for f in through._meta.fields if f.related_model is get_user_model())
        group_col = next(f.column for f in through._meta.fields if f.related_model is Group)
        parts.append(
            f'EXISTS (SELECT 1 FROM "{through._meta.db_table}" ug JOIN "{Group._meta.db_table}" g '  # noqa: S608  # nosec B608 - identifiers from model metadata; values are parameters
            f'ON g."{Group._meta.pk.column}" = ug."{group_col}" WHERE ug."{user_col}" = %s '
            f'AND g."name" IN ({", ".join(["%s"] * groups)}))'
        )
    return "SELECT " + ", ".join(parts)


@dataclass(frozen=True)
class FactorSummary:
    """What a login, /me and the security page ask about a user's factors, from one statement."""

    methods: list[str]
    policy: bool  # staff or a MFA_REQUIRED_GROUPS member: strong factors only, enrolment required
    strong: bool  # has a strong factor (TOTP or a passkey)


_SUMMARY_ATTR = "_mfa_factor_summary"
# Set on a user object that lives for one request (the login attempt's, the API's): the summary is
# then computed once per request. Other user objects (a test's, a management command's) ask every time.
MEMO_ATTR = "_mfa_memo"


def factor_summary(*, user: Any) -> FactorSummary:
    """One cheap statement (see _methods_sql); kept for the request on a request's user object."""
    cached = getattr(user, _SUMMARY_ATTR, None)
    if isinstance(cached, FactorSummary):
        return cached
    from mfa.cache import summaries

    shared, generation = summaries.get(user.pk)
    if isinstance(shared, FactorSummary):
        if getattr(user, MEMO_ATTR, False) or getattr(user, "_loaded_for_login", False):
            setattr(user, _SUMMARY_ATTR, shared)
        return shared
    summary = _factor_summary_query(user)
    summaries.put(user.pk, generation, summary)
    if getattr(user, MEMO_ATTR, False) or getattr(user, "_loaded_for_login", False):
        setattr(user, _SUMMARY_ATTR, summary)
    return summary


def _factor_summary_query(user: Any) -> FactorSummary:
    staff = bool(getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))
    groups = sorted(set(settings.MFA_REQUIRED_GROUPS)) if not staff else []
    kinds = [m for m in FACTOR_MODELS if m != "recovery"]
    with connection.cursor() as cursor:
        cursor.execute(_methods_sql(len(groups)), [user.pk] * (len(kinds) + 1 + (1 if groups else 0)) + groups)
        row = cursor.fetchone()
    has = dict(zip([*kinds, "recovery", "policy_group"], [bool(v) for v in row], strict=False))
    policy = staff or bool(has.get("policy_group"))
    if policy:
        allowed = [m for m in FACTOR_MODELS if m in settings.MFA_STRONG_METHODS or m == "recovery"]
    else:
        allowed = list(FACTOR_MODELS)
    methods = [m for m in allowed if m != "recovery" and has[m]]
    if methods and has["recovery"]:
        methods.append("recovery")
    strong = any(has[m] for m in ("totp", "webauthn") if m in settings.MFA_STRONG_METHODS)
    return FactorSummary(methods=methods, policy=policy, strong=strong)


def summary_seed(*, user: Any, data: dict[str, Any]) -> FactorSummary:
    """The summary a paused login computed a moment ago (its facts), kept on this request's user."""
    summary = FactorSummary(
        methods=[str(m) for m in data.get("methods", [])],
        policy=bool(data.get("policy")),
        strong=bool(data.get("strong")),
    )
    setattr(user, _SUMMARY_ATTR, summary)
    return summary


def factors_changed(*, user: Any) -> None:
    """Forgets the summary kept on this user object and, on every node, in Redis (mfa.cache)."""
    if hasattr(user, _SUMMARY_ATTR):
        delattr(user, _SUMMARY_ATTR)
    from mfa import cache

    cache.factors_changed(user_id=getattr(user, "pk", None))


def methods_for(*, user: Any) -> list[str]:
    """Usable, verified factors; recovery codes only alongside another factor and with codes left."""
    if user is None or not getattr(user, "pk", None):
        return []
    return list(factor_summary(user=user).methods)


def has_strong_factor(*, user: Any) -> bool:
    return factor_summary(user=user).strong


def state_for(*, user: Any) -> MFAState | None:
    """The user's MFA bookkeeping; from the user row when the login loaded it (select_related)."""
    from accounts.pipeline import loaded_related

    loaded, state = loaded_related(user, "mfa_state")
    return state if loaded else MFAState.objects.filter(user=user).first()


# Factors that can confirm something bound to it (a payment, a payee): recovery codes cannot.
BINDABLE_METHODS = ("webauthn", "totp", "sms", "email")
# Purposes for which a user with no email factor may get a code at the verified address: the
# risky-login step (proving the mailbox of sign-up), and step-ups where email_fallback_allowed.
LOGIN_PURPOSES = ("login_verify",)


def email_fallback_allowed(*, user: Any) -> bool:
    """A code to the verified address may confirm a step-up: customers only, where the deployment allows it."""
    return bool(
        settings.STEP_UP_EMAIL_FALLBACK and getattr(user, "email_verified", False) and not strong_only(user=user)
    )


def step_up_methods(*, user: Any, methods: list[str] | None = None) -> list[str]:
    """The methods that can confirm a bound step-up; ["email"] (the verified address) when none is enrolled."""
    enrolled = [m for m in (methods_for(user=user) if methods is None else methods) if m in BINDABLE_METHODS]
    if enrolled:
        return enrolled
    return ["email"] if email_fallback_allowed(user=user) else []


def verified_address_code_allowed(*, user: Any, purpose: str) -> bool:
    """An emailed code to the sign-up address, for a user with no email factor (see code_send)."""
    if not getattr(user, "email_verified", False):
        return False
    if purpose in LOGIN_PURPOSES:
        return True
    return email_fallback_allowed(user=user)


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


def me_fields(*, user: Any) -> dict[str, Any]:
    """The factor fields of GET /api/v1/me (settings.ACCOUNT_ME_FIELDS); from Redis when warm (mfa.cache)."""
    from mfa import cache

    fields, generation = cache.me_fields.get(user.pk)
    if isinstance(fields, dict):
        return dict(fields)
    fields = {"mfa_methods": methods_for(user=user), "preferred_mfa_method": preferred_method(user=user)}
    cache.me_fields.put(user.pk, generation, fields)
    return dict(fields)
