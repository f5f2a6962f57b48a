"""A hot read's queryset, compiled to SQL once per process and database instead of per request.

Building a queryset, resolving its lookups and compiling it costs several times what PostgreSQL
spends answering a small indexed read, on every request. `CompiledQuery` asks the ORM once for
the SQL of the queryset its builder returns (so the SQL is always the ORM's own: the same table,
joins, filters, ordering and columns), then runs that SQL with the request's value in the place
of a sentinel. The rows are what the queryset gives, as model instances with exactly the
queryset's columns loaded (`Model.from_db`).

Only querysets whose columns need no conversion from the database (no `from_db_value`, no
backend converter) and where the sentinel occurs once among the parameters are compiled; any
other queryset is run through the ORM on every call, so the answer never differs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections, router
from django.db.models import Model, QuerySet

# A primary-key value no row has: where the per-request value goes in the compiled SQL.
SENTINEL = -7_331_945_226_518_203


class CompiledQuery:
    """`build(value)` returns a queryset of `model` filtered on `value`, e.g.
    CompiledQuery(Account, lambda owner_id: Account.objects.filter(owner_id=owner_id).only(...))."""

    def __init__(self, model: type[Model], build: Callable[[Any], QuerySet[Any]]) -> None:
        self.model = model
        self.build = build
        self._compiled: dict[str, tuple[str, list[Any], int, list[str]] | None] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str) -> tuple[str, list[Any], int, list[str]] | None:
        queryset = self.build(SENTINEL)
        if queryset.model is not self.model:
            return None
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        if compiler.get_converters([col for col, _, _ in compiler.select]):
            return None  # values the database returns in another form than the model's
        info = compiler.klass_info
        if info is None or info.get("related_klass_infos") or len(info["select_fields"]) != len(compiler.select):
            return None  # select_related, annotations or extra columns: not one model's columns
        places = [index for index, value in enumerate(params) if type(value) is int and value == SENTINEL]
        if len(places) != 1:
            return None
        columns = [compiler.select[index][0].target.attname for index in info["select_fields"]]
        return sql, list(params), places[0], columns

    def rows(self, value: Any) -> list[Any]:
        """The queryset's model instances for `value`: one statement, nothing compiled when warm."""
        alias = router.db_for_read(self.model)
        if alias not in self._compiled:
            with self._lock:
                if alias not in self._compiled:
                    self._compiled[alias] = self._compile(alias)
        compiled = self._compiled[alias]
        if compiled is None:
            return list(self.build(value).using(alias))
        sql, params, place, columns = compiled
        params = list(params)
        params[place] = value
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchall()
        return [self.model.from_db(alias, columns, row) for row in found]
