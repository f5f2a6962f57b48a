"""Staff actions on user accounts (services): each re-authenticated, reasoned and audited.

The Django admin (accounts/admin.py) is the only front end; every function here checks the
staff member's permission itself, so no entry point can skip it. The event's `actor` is the
member of staff and its `reason` their written reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit.events import EventType, Outcome
from audit.roles import MANAGE_USER_ACCOUNTS
from audit.services import record

REASON_MIN_LENGTH = 5


class StaffActionError(Exception):
    """A refusal, with a message safe to show the member of staff."""


def _check(*, user: User, actor: User, reason: str, self_allowed: bool = True) -> str:
    if not (actor.is_active and actor.is_staff and actor.has_perm(MANAGE_USER_ACCOUNTS)):
        raise StaffActionError("You are not allowed to perform staff actions on accounts.")
    if user.is_superuser and not actor.is_superuser:
        raise StaffActionError("Only a superuser can act on a superuser's account.")
    if not self_allowed and user.pk == actor.pk:
        raise StaffActionError("You cannot do this to your own account.")
    reason = " ".join((reason or "").split())
    if len(reason) < REASON_MIN_LENGTH:
        raise StaffActionError(f"Write a reason of at least {REASON_MIN_LENGTH} characters.")
    return reason[:255]


def account_unlock(*, user: User, actor: User, reason: str) -> None:
    """Clears the axes lockout and the failure counters (CAPTCHA threshold) of the account."""
    from axes.utils import reset as axes_reset

    from accounts import security

    reason = _check(user=user, actor=actor, reason=reason)
    with transaction.atomic():
        cleared = axes_reset(username=user.email)
        security.failures_cleared(email=user.email)
        record(
            type=EventType.ADMIN_ACCOUNT_UNLOCKED,
            user=user,
            actor=actor,
            reason=reason,
            details={"lockouts_cleared": int(cleared or 0)},
        )


def account_sessions_end(*, user: User, actor: User, reason: str) -> int:
    """Ends every web session and mobile token family of the user at once."""
    from accounts.services import sessions_end_all

    reason = _check(user=user, actor=actor, reason=reason)
    with transaction.atomic():
        ended = sessions_end_all(user=user, reason="ended_by_staff", actor=actor)
        record(type=EventType.ADMIN_SESSIONS_ENDED, user=user, actor=actor, reason=reason, details={"ended": ended})
    return ended


def mfa_reset_function() -> Callable[..., None] | None:
    """The MFA helper's mfa.services.mfa_reset, when it exists."""
    try:
        module = importlib.import_module("mfa.services")
    except ImportError:
        return None
    function = getattr(module, "mfa_reset", None)
    return function if callable(function) else None


def account_mfa_reset(*, user: User, actor: User, reason: str) -> None:
    """Removes every second factor of the user (lost phone); they enrol again at next login."""
    reason = _check(user=user, actor=actor, reason=reason)
    mfa_reset = mfa_reset_function()
    if mfa_reset is None:
        raise StaffActionError("Resetting second factors is not available.")
    with transaction.atomic():
        mfa_reset(user=user, actor=actor, reason=reason)
        record(type=EventType.ADMIN_MFA_RESET, user=user, actor=actor, reason=reason)


def account_disable(*, user: User, actor: User, reason: str) -> int:
    """Disables the account (no login) and ends every session and token family."""
    from accounts.services import sessions_end_all

    reason = _check(user=user, actor=actor, reason=reason, self_allowed=False)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        ended = sessions_end_all(user=locked, reason="account_disabled", actor=actor)
        record(type=EventType.ADMIN_ACCOUNT_DISABLED, user=locked, actor=actor, reason=reason, details={"ended": ended})
    user.is_active = False
    return ended


def account_enable(*, user: User, actor: User, reason: str) -> None:
    reason = _check(user=user, actor=actor, reason=reason, self_allowed=False)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.is_active = True
        locked.save(update_fields=["is_active"])
        record(type=EventType.ADMIN_ACCOUNT_ENABLED, user=locked, actor=actor, reason=reason)
    user.is_active = True


def account_password_reset_force(*, user: User, actor: User, reason: str) -> int:
    """The user must choose a new password: flag, a reset email, and every session ends."""
    from accounts.services import password_reset_request, sessions_end_all

    reason = _check(user=user, actor=actor, reason=reason, self_allowed=False)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        locked.must_reset_password = True
        locked.save(update_fields=["must_reset_password"])
        password_reset_request(email=locked.email)
        ended = sessions_end_all(user=locked, reason="password_reset_forced", actor=actor)
        record(
            type=EventType.ADMIN_PASSWORD_RESET_FORCED,
            user=locked,
            actor=actor,
            reason=reason,
            details={"ended": ended, "email_sent": locked.is_active},
        )
    user.must_reset_password = True
    return ended


@dataclass(frozen=True)
class StaffAction:
    name: str
    label: str
    function: Callable[..., Any]
    warning: str


def available_actions() -> list[StaffAction]:
    actions = [
        StaffAction(
            "unlock",
            "Unlock account (clear failed-login lockout)",
            account_unlock,
            "The lockout and failed-login counters of these accounts are cleared.",
        ),
        StaffAction(
            "end_sessions",
            "End all sessions and mobile logins",
            account_sessions_end,
            "Every web session and mobile app login of these users ends at once.",
        ),
    ]
    if mfa_reset_function() is not None:
        actions.append(
            StaffAction(
                "reset_mfa",
                "Reset second factors (MFA)",
                account_mfa_reset,
                "Every second factor of these users is removed; they must enrol again.",
            )
        )
    actions += [
        StaffAction(
            "disable",
            "Disable account (and end all sessions)",
            account_disable,
            "These users can no longer log in; their sessions and mobile logins end.",
        ),
        StaffAction("enable", "Enable account", account_enable, "These users can log in again."),
        StaffAction(
            "force_password_reset",
            "Force a password reset",
            account_password_reset_force,
            "These users must choose a new password: they get a reset email and every session ends.",
        ),
    ]
    return actions


# --- Re-authentication of the member of staff ------------------------------------------------


def _reauth_key(actor: User) -> str:
    return f"staff-reauth-fail:{actor.pk}"


def staff_reauth_locked(*, actor: User) -> bool:
    return int(cache.get(_reauth_key(actor)) or 0) >= settings.STAFF_REAUTH_MAX_FAILURES


def staff_reauthenticate(*, request: HttpRequest, actor: User, password: str, action: str) -> bool:
    """Checks the staff member's own password for this action; wrong ones are audited and counted."""
    if staff_reauth_locked(actor=actor):
        raise StaffActionError("Too many wrong passwords. Staff actions are locked for a while.")
    if password and actor.check_password(password):
        cache.delete(_reauth_key(actor))
        request.session["auth_time"] = timezone.now().timestamp()
        return True
    key = _reauth_key(actor)
    timeout = settings.STAFF_REAUTH_LOCK_MINUTES * 60
    if not cache.add(key, 1, timeout=timeout):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=timeout)
    record(
        type=EventType.ADMIN_REAUTH_FAILED,
        outcome=Outcome.FAILURE,
        user=actor,
        actor=actor,
        details={"action": action[:32]},
    )
    return False
