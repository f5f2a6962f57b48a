"""The staff action on second factors (offered on Users in the admin by mfa/admin.py)."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from accounts.staff import staff_check
from audit.events import EventType
from audit.services import record
from mfa.services import mfa_reset


def account_mfa_reset(*, user: User, actor: User, reason: str) -> None:
    """Removes every second factor of the user (lost phone); they enrol again at next login."""
    reason = staff_check(user=user, actor=actor, reason=reason)
    with transaction.atomic():
        mfa_reset(user=user, actor=actor, reason=reason)
        record(type=EventType.ADMIN_MFA_RESET, user=user, actor=actor, reason=reason)
