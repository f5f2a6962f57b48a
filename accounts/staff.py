"""Staff actions on user accounts (services): each permission-checked, reasoned and audited.

The Django admin (accounts/admin.py, Users -> action) is the front end; it sends the member of
staff through the one re-authentication (accounts.authn) first. Every function here checks the
staff member's permission itself, so no other entry point can skip it. The event's `actor` is
the member of staff and its `reason` their written reason.

Apps above accounts add their own actions with `register_action` (mfa/admin.py adds "Reset
second factors"): accounts never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from axes.utils import reset as axes_reset
from django.db import transaction

from accounts import security
from accounts.models import User
from accounts.services import password_reset_request, sessions_end_all
from audit.events import EventType
from audit.roles import MANAGE_USER_ACCOUNTS
from audit.services import record
from core.errors import DomainError

REASON_MIN_LENGTH = 5


class StaffActionError(DomainError):
    """A staff action refused, with a message safe to show the member of staff."""

    code = "staff_action_refused"
    status = 403


def staff_check(*, user: User, actor: User, reason: str, self_allowed: bool = True) -> str:
    """The checks every staff action makes first; returns the normalised reason."""
    if not (actor.is_active and actor.is_staff and actor.has_perm(MANAGE_USER_ACCOUNTS)):
        raise StaffActionError("You are not allowed to perform staff actions on accounts.")
    if user.is_superuser and not actor.is_superuser:
        raise StaffActionError("Only a superuser can act on a superuser's account.")
    if not self_allowed and user.pk == actor.pk:
        raise StaffActionError("You cannot do this to your own account.", code="own_account")
    reason = " ".join((reason or "").split())
    if len(reason) < REASON_MIN_LENGTH:
        raise StaffActionError(
            f"Write a reason of at least {REASON_MIN_LENGTH} characters.", code="reason_required", status=400
        )
    return reason[:255]


def account_unlock(*, user: User, actor: User, reason: str) -> None:
    """Clears the axes lockout and the failure counters (CAPTCHA threshold) of the account."""
    reason = staff_check(user=user, actor=actor, reason=reason)
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
    reason = staff_check(user=user, actor=actor, reason=reason)
    with transaction.atomic():
        ended = sessions_end_all(user=user, reason="ended_by_staff", actor=actor)
        record(type=EventType.ADMIN_SESSIONS_ENDED, user=user, actor=actor, reason=reason, details={"ended": ended})
    return ended


def _user_flag_set(user: User, name: str, value: bool) -> User:
    """Sets one flag on the locked row (inside the caller's transaction) and on the caller's object."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    setattr(locked, name, value)
    locked.save(update_fields=[name])
    setattr(user, name, value)
    return locked


def account_disable(*, user: User, actor: User, reason: str) -> int:
    """Disables the account (no login) and ends every session and token family."""
    reason = staff_check(user=user, actor=actor, reason=reason, self_allowed=False)
    with transaction.atomic():
        locked = _user_flag_set(user, "is_active", False)
        ended = sessions_end_all(user=locked, reason="account_disabled", actor=actor)
        record(type=EventType.ADMIN_ACCOUNT_DISABLED, user=locked, actor=actor, reason=reason, details={"ended": ended})
    return ended


def account_enable(*, user: User, actor: User, reason: str) -> None:
    reason = staff_check(user=user, actor=actor, reason=reason, self_allowed=False)
    with transaction.atomic():
        locked = _user_flag_set(user, "is_active", True)
        record(type=EventType.ADMIN_ACCOUNT_ENABLED, user=locked, actor=actor, reason=reason)


def account_password_reset_force(*, user: User, actor: User, reason: str) -> int:
    """The user must choose a new password: flag, a reset email, and every session ends."""
    reason = staff_check(user=user, actor=actor, reason=reason, self_allowed=False)
    with transaction.atomic():
        locked = _user_flag_set(user, "must_reset_password", True)
        password_reset_request(email=locked.email)
        ended = sessions_end_all(user=locked, reason="password_reset_forced", actor=actor)
        record(
            type=EventType.ADMIN_PASSWORD_RESET_FORCED,
            user=locked,
            actor=actor,
            reason=reason,
            details={"ended": ended, "email_sent": locked.is_active},
        )
    return ended


@dataclass(frozen=True)
class StaffAction:
    name: str
    label: str
    function: Callable[..., Any]
    warning: str


_ACTIONS: dict[str, StaffAction] = {}


def register_action(action: StaffAction) -> None:
    """Offers a staff action on users in the admin (idempotent: the last registration of a name wins)."""
    _ACTIONS[action.name] = action


def available_actions() -> list[StaffAction]:
    return list(_ACTIONS.values())


def action_named(name: str) -> StaffAction | None:
    return _ACTIONS.get(name)


for _action in (
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
):
    register_action(_action)
