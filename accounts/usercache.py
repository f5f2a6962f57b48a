"""The user row by public id, for bearer requests: from Redis when warm (core.cached).

Every bearer request (mobile and provider tokens) needs its user: is the account still active,
and the object the view works with. The row is cached in Redis under the user's public id,
tagged with the user's generation, which every save or delete of the user (a deactivation, a
password or email change, staff flags) and every change of their groups replaces at once and
again at commit (receivers below, and `user_changed` for queryset updates). The password hash
is never cached: the cached object has it deferred, so code that needs it loads it from
PostgreSQL.

`prefetch_keys` names what `user_by_public_id` reads (for core.cached.prefetch), and `pk_hint`
the primary key this process last saw for a public id (both are fixed for a user's lifetime),
so a bearer request can name its user's other keys (throttle counters, factor fields) before
the row is read.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from accounts.models import User
from core.cached import Cached, invalidate

GROUP = "user"
USER_TTL = 300
# Every concrete column but the password hash, in model order.
_FIELDS: tuple[str, ...] = tuple(f.attname for f in User._meta.concrete_fields if f.attname != "password")
# The key names the column list: during a rolling deploy that adds or renames a column, old and
# new code never read each other's tuples.
_users = Cached("user-" + hashlib.sha256(",".join(_FIELDS).encode()).hexdigest()[:8], group=GROUP, ttl=USER_TTL)


# public id -> primary key, as last read by this process (never changes for a user).
_pks: dict[str, Any] = {}
_PKS_MAX = 100_000
_PK_INDEX = _FIELDS.index("id")


def prefetch_keys(public_id: str) -> tuple[str, str]:
    """The Redis keys `user_by_public_id` reads (for core.cached.prefetch)."""
    return _users.keys(public_id)


def pk_hint(public_id: str) -> Any:
    """The primary key of this public id's user as this process last read it, or None. A hint to
    name keys ahead: the row read afterwards is the truth (its pk is compared before use)."""
    return _pks.get(public_id)


def _remember_pk(public_id: str, pk: Any) -> None:
    if len(_pks) >= _PKS_MAX:
        _pks.clear()
    _pks[public_id] = pk


def user_by_public_id(public_id: str) -> User | None:
    """The user with this public id (None: no such user); no SQL when warm."""
    cached, generation = _users.get(public_id)
    if isinstance(cached, tuple) and len(cached) == len(_FIELDS):
        if public_id not in _pks:
            _remember_pk(public_id, cached[_PK_INDEX])
        return User.from_db("default", list(_FIELDS), list(cached))
    user = User.objects.filter(public_id=public_id).only(*_FIELDS).order_by().first()
    if user is not None:
        _users.put(public_id, generation, tuple(getattr(user, name) for name in _FIELDS))
        _remember_pk(public_id, user.pk)
    return user


def user_changed(user: Any) -> None:
    """Call after changing a user row without save() (QuerySet.update): every node sees it at once."""
    public_id = getattr(user, "public_id", None)
    if public_id is not None:
        invalidate(GROUP, public_id)
    if getattr(user, "pk", None) is not None:
        from accounts.signals import user_row_changed

        user_row_changed.send(sender=User, user=user)


@receiver(post_save, sender=User, dispatch_uid="usercache-save")
@receiver(post_delete, sender=User, dispatch_uid="usercache-delete")
def _user_saved(sender: Any, instance: User, **kwargs: Any) -> None:
    if kwargs.get("created"):
        return  # nothing can be cached under a new user's ids yet
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        # The login stamp: read by nothing a bearer request answers. The cached copy keeps the
        # older stamp (at most USER_TTL seconds), so a login does not empty the caches.
        return
    user_changed(instance)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="usercache-groups")
def _groups_changed(sender: Any, instance: Any, action: str, pk_set: Any = None, **kwargs: Any) -> None:
    if isinstance(instance, User):
        if action.startswith("post_"):
            user_changed(instance)
        return
    # A group's members changed from the group's side: each user named, or every member on clear.
    if action in ("post_add", "post_remove"):
        users = User.objects.filter(pk__in=list(pk_set or []))
    elif action == "pre_clear":
        users = User.objects.filter(groups=instance)
    else:
        return
    for user in users.only("pk", "public_id"):
        user_changed(user)
