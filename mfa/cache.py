"""A user's factor summary and /me factor fields in Redis (core.cached), stale at once on change.

Invalidated (a new generation for the user) by every save or delete of a factor, a recovery
code or the user's MFA state (preferred method), by the user's own save and group changes
(accounts.usercache.user_changed: staff flags and policy groups decide the allowed methods), and
by the rename or deletion of a group (its members). Saves that change nothing the summary
reads (a factor's last use, TOTP's counter, a passkey's sign count, the failure counter) keep it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from accounts.signals import user_row_changed
from core.cached import Cached, invalidate
from mfa.models import EmailFactor, MFAState, RecoveryCode, RecoveryCodeSet, SMSFactor, TOTPFactor, WebAuthnCredential

GROUP = "mfa"
TTL = 300
# Versioned names: a change of what is stored (FactorSummary's fields, /me's keys) bumps them.
# Read by the login's second-factor stage: fetched with the password login's counters (the
# "login" tag, accounts.security.login_prefetch).
summaries = Cached("mfa-summary-v1", group=GROUP, ttl=TTL, prefetch_tags=("login",))
# Read on every GET /api/v1/me: fetched with the request's other keys there (its `prefetch_tags`).
me_fields = Cached("mfa-me-v1", group=GROUP, ttl=TTL, prefetch_tags=("me",))

_FACTORS = (TOTPFactor, SMSFactor, EmailFactor, WebAuthnCredential, RecoveryCodeSet)
# Columns whose change alters no answer of the summary or of /me.
_IRRELEVANT = {
    "last_used_at",
    "last_t",
    "sign_count",
    "backed_up",
    "name",
    "throttling_failure_count",
    "throttling_failure_timestamp",
    "consecutive_failures",
    "locked_until",
    "enrol_prompt_dismissed_at",
}


def factors_changed(*, user_id: Any) -> None:
    if user_id is not None:
        invalidate(GROUP, user_id)


@receiver(user_row_changed, dispatch_uid="mfa-cache-user-row")
def _user_row_changed(sender: Any, user: Any, **kwargs: Any) -> None:
    factors_changed(user_id=getattr(user, "pk", None))


def _relevant(kwargs: dict[str, Any]) -> bool:
    update_fields = kwargs.get("update_fields")
    return update_fields is None or not set(update_fields) <= _IRRELEVANT


def _factor_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("signal") is post_delete or _relevant(kwargs):
        factors_changed(user_id=getattr(instance, "user_id", None))


for _model in (*_FACTORS, MFAState):
    post_save.connect(_factor_saved, sender=_model, dispatch_uid=f"mfa-cache-save-{_model.__name__}")
    post_delete.connect(_factor_saved, sender=_model, dispatch_uid=f"mfa-cache-delete-{_model.__name__}")


@receiver(post_save, sender=RecoveryCode, dispatch_uid="mfa-cache-code-save")
def _code_saved(sender: Any, instance: RecoveryCode, **kwargs: Any) -> None:
    # A code used or added (codes are deleted only with their set, whose delete invalidates).
    # The set is usually loaded already (the code came through set.codes); else one small read.
    code_set = RecoveryCodeSet.objects.filter(pk=instance.code_set_id).values_list("user_id", flat=True)
    cached = RecoveryCode.code_set.is_cached(instance)
    factors_changed(user_id=instance.code_set.user_id if cached else code_set.first())


@receiver(post_save, sender=Group, dispatch_uid="mfa-cache-group-save")
@receiver(pre_delete, sender=Group, dispatch_uid="mfa-cache-group-delete")
def _group_changed(sender: Any, instance: Group, **kwargs: Any) -> None:
    if kwargs.get("created"):
        return
    for user_id in instance.user_set.values_list("pk", flat=True):
        factors_changed(user_id=user_id)
