"""Reads of the security reports from a PostgreSQL read replica (off unless configured).

With DATABASE_REPLICA_URL set, settings add the "replica" database and this router. Only code
that asks for it reads there: the reports wrap their queries in `reports_replica()` (or use
`@reads_from_replica`). Everything else, and anything inside a transaction on the primary,
reads and writes the primary, so a request never sees its own writes disappear behind the
replica's lag. Writes and migrations go to the primary only.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import connections

_P = ParamSpec("_P")
_R = TypeVar("_R")
_on_replica: contextvars.ContextVar[bool] = contextvars.ContextVar("reports_on_replica", default=False)


def replica_alias() -> str | None:
    alias = str(getattr(settings, "REPORTS_REPLICA_ALIAS", "") or "")
    return alias if alias and alias in settings.DATABASES else None


@contextmanager
def reports_replica() -> Iterator[None]:
    token = _on_replica.set(True)
    try:
        yield
    finally:
        _on_replica.reset(token)


def reads_from_replica(view: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(view)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with reports_replica():
            return view(*args, **kwargs)

    return wrapper


class ReportsReplicaRouter:
    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        alias = replica_alias()
        if alias is None or not _on_replica.get():
            return None
        if connections["default"].in_atomic_block:
            return None  # a transaction on the primary reads its own writes
        return alias

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        return db == "default"
