"""Which user a client-credentials token acts for: from Redis when warm (core.cached).

A client-credentials token carries only `client_id`; every resource request with it needs the
client's active flag and bound user. That answer (the client's user public id, or "inactive") is
cached under the client id and made stale at once, on every node, by each save or delete of the
client (disabling it in the admin, rotating its secret, changing its owner). The user row itself
then comes from accounts.usercache, as for every other bearer token.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.usercache import user_by_public_id
from core.cached import Cached, invalidate
from idp.models import Client

GROUP = "oauth-client"
_owners = Cached("oauth-client-user", group=GROUP, ttl=300)
_INACTIVE = ""


def client_user(client_id: str) -> User | None:
    """The user an active client acts for; None for an unknown, disabled or unbound client."""
    owner, generation = _owners.get(client_id)
    if not isinstance(owner, str):
        row = Client.objects.filter(client_id=client_id, is_active=True).values_list("user__public_id", flat=True)
        found = row.first()
        owner = str(found) if found is not None else _INACTIVE
        _owners.put(client_id, generation, owner)
    return user_by_public_id(owner) if owner else None


@receiver(post_save, sender=Client, dispatch_uid="idp-clientcache-save")
@receiver(post_delete, sender=Client, dispatch_uid="idp-clientcache-delete")
def _client_changed(sender: Any, instance: Client, **kwargs: Any) -> None:
    if instance.client_id:
        invalidate(GROUP, instance.client_id)
