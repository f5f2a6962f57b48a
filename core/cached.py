"""Read-through caches in Redis that an invalidation makes stale at once, on every node.

A cached value is stored with the *generation* of what it was read from: each subject (a user,
say) has a generation key holding a random token, and every change to the subject writes a new
token (`invalidate`). A reader fetches the value and the generation in one MGET and accepts the
value only when its tag equals the current generation; otherwise it reads PostgreSQL and stores
the answer tagged with the generation it saw *before* that read.

Why tags rather than a DELETE: a reader that read the old row just before a change committed,
and writes it back just after the change's DELETE, would otherwise keep the old row in the cache
until its TTL. With tags, the change writes a new generation twice (when it happens, and again
when its transaction commits), so any value read before the commit carries an older tag and is
never accepted. A value tagged with the committed generation was read after the commit.

Losing Redis loses values and generations together: everything is read from PostgreSQL again.
A generation key outlives every value it can tag (GENERATION_TTL > any value TTL), so an
expired generation can never make an old value valid again.
"""

from __future__ import annotations

import secrets
from functools import partial
from typing import Any

from django.core.cache import cache
from django.db import transaction

GENERATION_TTL = 24 * 60 * 60
_NONE = "-"  # the generation of a subject that never changed (or whose key expired)
MISSING = object()


class Cached:
    """Values of kind `name` per subject of `group` (e.g. Cached("me", group="mfa"))."""

    def __init__(self, name: str, *, group: str, ttl: int) -> None:
        self.name = name
        self.group = group
        self.ttl = ttl

    def _keys(self, ident: Any) -> tuple[str, str]:
        return f"c:{self.name}:{ident}", generation_key(self.group, ident)

    def get(self, ident: Any) -> tuple[Any, str]:
        """(the value or MISSING, the generation to tag a fresh value with)."""
        value_key, gen_key = self._keys(ident)
        found = cache.get_many([value_key, gen_key])
        generation = str(found.get(gen_key) or _NONE)
        entry = found.get(value_key)
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
            return entry[1], generation
        return MISSING, generation

    def put(self, ident: Any, generation: str, value: Any) -> None:
        cache.set(self._keys(ident)[0], (generation, value), timeout=self.ttl)


def generation_key(group: str, ident: Any) -> str:
    return f"gen:{group}:{ident}"


def regenerate(key: str) -> None:
    cache.set(key, secrets.token_hex(8), timeout=GENERATION_TTL)


def invalidate(group: str, ident: Any) -> None:
    """Every cached value of this subject is stale from now on, and again once the change commits."""
    key = generation_key(group, ident)
    regenerate(key)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(partial(regenerate, key))
