"""A customer's account list (GET /api/v1/accounts) in Redis (core.cached), stale at once on change.

The list is read on every `GET /api/v1/accounts`, with the request's other Redis keys in its one
round trip (the view's `prefetch_tags`), so a warm read runs no SQL. It is made stale (a new
generation for the owner) by:

- every posting: the ledger names the owners of the accounts it moved money on (PostgreSQL
  returns them from the balance UPDATE itself), and their generations change when the posting's
  transaction commits, in one round trip (`core.cached.invalidate_at_commit`);
- every save or delete of a BankAccount row (account opened, renamed, closed, an admin edit),
  for its owner and, when the owner changed, the previous one.

A balance the customer sees is therefore never older than the last committed posting they could
have observed: the payer's 201 is answered after the commit and its new generation.

A `QuerySet.update()` of BankAccount rows sends no signal: code that changes balances or account
rows that way (only the ledger does today) calls `balances_changed` with the owners itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from accounts.models import User
from core.cached import MISSING, Cached, invalidate, invalidate_at_commit
from core.sql import PreparedSelect
from payments import selectors
from payments.models import BankAccount

GROUP = "accounts"
# A list lives a minute: the most a balance can lag after a Redis failover to a replica that had not
# yet received the last generation (the revocation entries have the same kind of bound,
# REVOCATION_LIVE_CACHE_SECONDS); a miss a minute per active customer costs one small query.
TTL = 60
# Versioned name: a change of account_representation's keys bumps it.
account_lists = Cached("account-list-v1", group=GROUP, ttl=TTL, prefetch_tags=("accounts",))

# The selector's queryset compiled once (core.sql), with only the columns the representation
# reads. The sample owner id is one no user has.
_ACCOUNTS: PreparedSelect[BankAccount] = PreparedSelect(
    lambda owner_id: selectors.accounts_for_user(user=User(pk=owner_id)).only(
        "id", "iban", "name", "currency", "balance"
    ),
    -7_331_945_226_518_203,
)


def account_list(owner_id: Any) -> list[dict[str, Any]]:
    """The representations of the owner's open customer accounts, oldest first; no SQL when warm."""
    value, generation = account_lists.get(owner_id)
    if value is MISSING:
        value = [selectors.account_representation(account) for account in _ACCOUNTS.all(owner_id)]
        account_lists.put(owner_id, generation, value)
    return value  # type: ignore[no-any-return]


def balances_changed(owner_ids: Iterable[Any]) -> None:
    """Called by the ledger for every posting: these owners' lists are stale once it commits."""
    invalidate_at_commit(GROUP, owner_ids)


@receiver(pre_save, sender=BankAccount, dispatch_uid="account-list-owner-before")
def _owner_before(sender: Any, instance: BankAccount, **kwargs: Any) -> None:
    if instance._state.adding or kwargs.get("raw"):
        return
    previous = BankAccount.objects.filter(pk=instance.pk).values_list("owner_id", flat=True).first()
    if previous is not None and previous != instance.owner_id:
        invalidate(GROUP, previous)


@receiver(post_save, sender=BankAccount, dispatch_uid="account-list-save")
@receiver(post_delete, sender=BankAccount, dispatch_uid="account-list-delete")
def _account_saved(sender: Any, instance: BankAccount, **kwargs: Any) -> None:
    if instance.owner_id is not None:
        invalidate(GROUP, instance.owner_id)
