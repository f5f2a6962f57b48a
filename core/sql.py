"""Statements of the hot paths (login, token refresh): compiled by the ORM once, not per request.

Profiles of a login and a refresh (bench/README.md, issue 15) showed the ORM's own work beside
the statements: compiling a queryset with `select_related` (joins, column lists, lookups) cost
more CPU than running it (45 % of a refresh went to the one SELECT of the token, its family and
the user), and each `Model.save()` on a fresh row runs the full save machinery and one statement
per row. Two tools, both built on the ORM's own compilers, so the SQL, the column lists and the
conversions of values are Django's:

* `PreparedSelect`: a queryset built once (per thread and connection) with sample values; each
  call runs the same SQL with its own values and builds the objects as the ORM's iterable does
  (related rows from `select_related` included, converters applied).
* `insert_rows`: fresh rows of several models in **one** statement (PostgreSQL: data-modifying
  CTEs; elsewhere one INSERT per model), with the ORM's `pre_save`/`get_db_prep_save` of every
  field. No `save()` and no model signals: for rows that nothing listens to (login and token
  rows, audit events); the primary keys must be set before (UUIDs) or not be needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=models.Model)


@dataclass
class _Plan:
    connection: Any
    compiler: Any
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]
    model: type[models.Model]
    init_list: list[str]
    start: int
    end: int
    populators: list[Any]
    converters: dict[int, Any]
    for_update: bool


class PreparedSelect(Generic[M]):
    """`build(*samples)` returns the queryset; `first(*values)` runs it with `values` in the samples' places.

    Each sample must appear exactly once among the compiled query's parameters (pick values no real
    call uses, of the type the column's lookup passes to the database: str for text, int for ids).
    The values of a call are passed to the database as they are.
    """

    def __init__(self, build: Callable[..., models.QuerySet[M]], *samples: Any, using: str = DEFAULT_DB_ALIAS):
        self._build = build
        self._samples = samples
        self._using = using
        self._local = threading.local()

    def _plan(self) -> _Plan:
        connection = connections[self._using]
        plan: _Plan | None = getattr(self._local, "plan", None)
        if plan is not None and plan.connection is connection:
            return plan
        queryset = self._build(*self._samples)
        compiler = queryset.query.get_compiler(using=self._using)
        sql, params = compiler.as_sql()
        slots = []
        for sample in self._samples:
            found = [i for i, param in enumerate(params) if type(param) is type(sample) and param == sample]
            if len(found) != 1:
                raise ImproperlyConfigured(f"the sample {sample!r} must appear once in the query's parameters")
            slots.append(found[0])
        klass_info = compiler.klass_info
        select = compiler.select
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        plan = _Plan(
            connection=connection,
            compiler=compiler,
            sql=sql,
            params=tuple(params),
            slots=tuple(slots),
            model=klass_info["model"],
            init_list=[f[0].target.attname for f in select[start:end]],
            start=start,
            end=end,
            populators=get_related_populators(klass_info, select, self._using),  # type: ignore[call-arg]
            converters=compiler.get_converters([s[0] for s in select[0 : compiler.col_count]]),
            for_update=bool(queryset.query.select_for_update),
        )
        self._local.plan = plan
        return plan

    def all(self, *values: Any) -> list[M]:
        if len(values) != len(self._samples):
            raise TypeError(f"expected {len(self._samples)} values, got {len(values)}")
        connection = connections[self._using]
        if self._plan_for_update() and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        plan = self._plan()
        params = list(plan.params)
        for slot, value in zip(plan.slots, values, strict=True):
            params[slot] = value
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            rows: Iterable[Any] = cursor.fetchall()
        if plan.converters:
            rows = plan.compiler.apply_converters(rows, plan.converters)
        objects = []
        for row in rows:
            obj = plan.model.from_db(self._using, plan.init_list, row[plan.start : plan.end])
            for populator in plan.populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects  # type: ignore[return-value]

    def first(self, *values: Any) -> M | None:
        found = self.all(*values)
        return found[0] if found else None

    def _plan_for_update(self) -> bool:
        plan: _Plan | None = getattr(self._local, "plan", None)
        if plan is not None:
            return plan.for_update
        # Not compiled yet in this thread: the ORM's compiler itself refuses outside a transaction.
        return False


# (model, database, primary key included) -> the fields an INSERT writes and its SQL up to VALUES.
_INSERT_HEADS: dict[tuple[type[models.Model], str, bool], tuple[list[Any], str]] = {}


def _insert_head(model: type[models.Model], using: str, with_pk: bool) -> tuple[list[Any], str]:
    key = (model, using, with_pk)
    head = _INSERT_HEADS.get(key)
    if head is None:
        quote = connections[using].ops.quote_name
        fields = [
            f
            for f in model._meta.local_concrete_fields
            if not f.generated and not (f.primary_key and f.db_returning and not with_pk)
        ]
        columns = ", ".join(quote(str(f.column)) for f in fields)
        head = (fields, f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ")  # noqa: S608  # nosec B608 - identifiers from model metadata
        _INSERT_HEADS[key] = head
    return head


def _compiled_insert(
    model: type[models.Model], fields: list[Any], rows: Sequence[models.Model], using: str
) -> tuple[str, list[Any]]:
    query = InsertQuery(model)
    query.insert_values(fields, list(rows))
    statements = query.get_compiler(using=using).as_sql()
    if len(statements) != 1:  # pragma: no cover - only backends without multi-row INSERT
        raise ImproperlyConfigured("insert_statement needs a backend with multi-row INSERT")
    sql, params = statements[0]
    return sql, list(params)


def insert_statement(rows: Sequence[models.Model], *, using: str = DEFAULT_DB_ALIAS) -> tuple[str, list[Any]]:
    """The INSERT of new rows of one model, as (SQL, parameters), for a caller that runs it in its own
    statement (insert_rows, run_together, a data-modifying CTE) in its transaction.

    Every field but a database-generated one is written; the primary key too when it is set (it must
    be set on every row or on none). Each value is the field's own `pre_save(add=True)` then
    `get_db_prep_save`, as the ORM's insert compiler prepares it, and the SQL is what the compiler
    writes for plain parameters; a row holding an expression, or a model with a field of its own
    placeholder, goes through the compiler itself. Nothing is marked saved: see `mark_saved`.
    """
    if not rows:
        raise ValueError("insert_statement needs at least one row")
    model = type(rows[0])
    with_pk = rows[0].pk is not None
    for obj in rows:
        if type(obj) is not model:
            raise TypeError("rows of one INSERT must be of one model")
        if not obj._state.adding:
            raise ValueError("insert_statement writes new rows only")
        if (obj.pk is not None) is not with_pk:
            raise ValueError("rows of one INSERT set their primary keys all or none")
    fields, head = _insert_head(model, using, with_pk)
    if any(hasattr(f, "get_placeholder") for f in fields):
        return _compiled_insert(model, fields, rows, using)
    connection = connections[using]
    params: list[Any] = []
    for obj in rows:
        for f in fields:
            value = f.pre_save(obj, True)
            if hasattr(value, "resolve_expression"):
                return _compiled_insert(model, fields, rows, using)
            params.append(f.get_db_prep_save(value, connection))
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return head + ", ".join([row] * len(rows)), params


def mark_saved(rows: Iterable[models.Model], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Rows written by a statement of insert_statement are saved rows of `using` from now on."""
    for obj in rows:
        obj._state.adding = False
        obj._state.db = using


def insert_rows(
    rows: Sequence[models.Model],
    *,
    also: Sequence[tuple[str, Sequence[Any]]] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Writes new rows (of one model or several) in one statement, in the caller's transaction.

    Rows are grouped by model in the order given; on PostgreSQL every group but the last becomes a
    data-modifying CTE of the last one's INSERT, and so does each statement of `also` (UPDATEs of
    the same action, SQL with %s parameters; elsewhere they run first, one by one). All parts see
    the same snapshot: none may depend on another's effect but through foreign keys, which Django
    creates DEFERRABLE INITIALLY DEFERRED. Afterwards each row is marked as saved.
    """
    if not rows:
        raise ValueError("insert_rows needs at least one row")
    groups: dict[type[models.Model], list[models.Model]] = {}
    for obj in rows:
        groups.setdefault(type(obj), []).append(obj)
    parts = [(sql, list(params)) for sql, params in also]
    parts += [insert_statement(group, using=using) for group in groups.values()]
    run_together(parts, using=using)
    mark_saved(rows, using=using)


def _column(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field


def update_sql(
    model: type[models.Model], values: dict[str, Any], *, using: str = DEFAULT_DB_ALIAS, **where: Any
) -> tuple[str, list[Any]]:
    """`UPDATE <table> SET <values> WHERE <where>` (equality on each column) as SQL and parameters,
    the values prepared by each field as the ORM prepares them (`get_db_prep_save`), to be run
    alone or as one of insert_rows' `also` or run_together's parts."""
    connection = connections[using]
    opts = model._meta
    quote = connection.ops.quote_name
    sets, params = [], []
    for name, value in values.items():
        field = _column(model, name)
        sets.append(f"{quote(str(field.column))} = %s")
        params.append(field.get_db_prep_save(value, connection))
    conditions = []
    for name, value in where.items():
        field = _column(model, name)
        conditions.append(f"{quote(str(field.column))} = %s")
        params.append(field.get_db_prep_value(value, connection))
    if not sets or not conditions:
        raise ValueError("update_sql needs values and a condition")
    sql = f"UPDATE {quote(opts.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(conditions)}"  # noqa: S608  # nosec B608 - identifiers from model metadata, quoted; values are parameters
    return sql, params


def ctes(statements: Sequence[tuple[str, Sequence[Any]]], params: list[Any], *, prefix: str = "w") -> list[str]:
    """Statements (SQL with %s parameters) as data-modifying CTEs, `prefix0 AS (...)`, ... for a
    WITH clause; their parameters are appended to `params` in the same order."""
    parts = []
    for index, (sql, values) in enumerate(statements):
        parts.append(f"{prefix}{index} AS ({sql})")
        params.extend(values)
    return parts


def run_together(statements: Sequence[tuple[str, Sequence[Any]]], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Data-modifying statements that do not depend on each other's effects, in one round trip on
    PostgreSQL (all but the last as CTEs of the last); elsewhere one by one."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(statements) > 1:
            *first, (last_sql, last_params) = statements
            values: list[Any] = []
            sql = "WITH " + ", ".join(ctes(first, values)) + " " + last_sql
            cursor.execute(sql, [*values, *last_params])
        else:
            for sql, params in statements:
                cursor.execute(sql, list(params))
