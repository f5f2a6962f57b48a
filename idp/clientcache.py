"""The provider's client rows, and which user a client-credentials token acts for (core.cached).

client_by_id: every token request loads its client (django-oauth-toolkit's _load_application,
one SELECT of some 25 columns). This process keeps the row, tagged with the client's generation
in Redis, and uses it while that generation is unchanged (one GET per request instead of the
SELECT). The row stays in this process's memory, never in Redis (it holds the secret's hash).
A generation that is missing (never written, expired, or Redis lost) is first set to a new
random value, so a row read before the loss can never match again; each save or delete of the
client writes a new generation at once and again at commit (the receiver below), so every node
sees a disabled client or a rotated secret on its next request. Rows are also dropped after
LOCAL_SECONDS whatever happens.

A client-credentials token carries only `client_id`; every resource request with it needs the
client's active flag and bound user. That answer (the client's user public id, or "inactive") is
cached under the client id and made stale at once, on every node, by each save or delete of the
client (disabling it in the admin, rotating its secret, changing its owner). The user row itself
then comes from accounts.usercache, as for every other bearer token.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.usercache import user_by_public_id
from core.cached import GENERATION_TTL, Cached, generation_key, invalidate
from idp.models import Client

GROUP = "oauth-client"
_owners = Cached("oauth-client-user", group=GROUP, ttl=300)
_INACTIVE = ""


def owner_keys(client_id: str) -> tuple[str, str]:
    """The cache keys client_user reads for this client (for a request's one prefetch)."""
    return _owners.keys(client_id)


def client_user(client_id: str) -> User | None:
    """The user an active client acts for; None for an unknown, disabled or unbound client."""
    owner, generation = _owners.get(client_id)
    if not isinstance(owner, str):
        row = Client.objects.filter(client_id=client_id, is_active=True).values_list("user__public_id", flat=True)
        found = row.first()
        owner = str(found) if found is not None else _INACTIVE
        _owners.put(client_id, generation, owner)
    return user_by_public_id(owner) if owner else None


LOCAL_SECONDS = 60
LOCAL_MAX = 1024
_FIELDS = tuple(f.attname for f in Client._meta.concrete_fields)
_rows: OrderedDict[str, tuple[str, float, tuple[Any, ...]]] = OrderedDict()
_rows_lock = threading.Lock()


def _generation(client_id: str) -> str:
    key = generation_key(GROUP, client_id)
    found = cache.get(key)
    if not found:
        cache.add(key, secrets.token_hex(8), timeout=GENERATION_TTL)
        found = cache.get(key)
    return str(found or "")


def client_by_id(client_id: Any) -> Client | None:
    """The client with this client_id (a fresh instance per call), or None."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 255 or "\x00" in client_id:
        return None  # no stored client_id can be this (DOT: a NUL byte is "not found", GH #1006)
    generation = _generation(client_id)
    now = time.monotonic()
    with _rows_lock:
        entry = _rows.get(client_id)
        if entry is not None:
            _rows.move_to_end(client_id)
    if entry is not None and generation and entry[0] == generation and now - entry[1] < LOCAL_SECONDS:
        values = entry[2]
    else:
        row = Client.objects.filter(client_id=client_id).values_list(*_FIELDS).first()
        if row is None:
            return None
        values = tuple(row)
        if generation:
            with _rows_lock:
                _rows[client_id] = (generation, now, values)
                _rows.move_to_end(client_id)
                while len(_rows) > LOCAL_MAX:
                    _rows.popitem(last=False)
    # JSON values (the inline JWKS) are copied: a caller changing its instance changes no other.
    fresh = tuple(copy.deepcopy(v) if isinstance(v, (dict, list)) else v for v in values)
    return Client.from_db("default", _FIELDS, fresh)


@receiver(post_save, sender=Client, dispatch_uid="idp-clientcache-save")
@receiver(post_delete, sender=Client, dispatch_uid="idp-clientcache-delete")
def _client_changed(sender: Any, instance: Client, **kwargs: Any) -> None:
    if instance.client_id:
        invalidate(GROUP, instance.client_id)
