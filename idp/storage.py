"""The token endpoint's statements, for PostgreSQL: few round trips, little ORM work per request.

A code exchange used to cost a SELECT of the grant compiled by the ORM per request, the grant's
DELETE, four INSERTs (ID token, access token, refresh token, audit event) each through
`Model.save()`, and the consent's UPDATE. Here:

* `grant_by_code`: the grant, its user and its client, one statement compiled once
  (core.sql.PreparedSelect). The client row read there, fresh from PostgreSQL, is the one the
  exchange authenticates (idp.validator: no Redis round trip for idp.clientcache's generation).
* `spend_code`: the grant's DELETE, the consent's last use (an UPDATE the caller passes in `also`)
  and the primary keys the new rows need from their sequences, in one statement. The token rows
  refer to each other (access -> ID token, refresh -> access), so their ids are taken first and
  written explicitly; the foreign keys are checked at commit (Django creates them DEFERRABLE
  INITIALLY DEFERRED). The consent's UPDATE is here rather than in the write below so that the
  write stays within psycopg's cache of converted statements (at most 50 parameters).
* The new rows themselves are written with the audit event in one statement
  (core.sql.insert_statement, audit.services.record_many). No `save()` and no model signals:
  nothing listens to these rows.

Elsewhere (SQLite in development) the validator saves rows through the ORM as before (`batching`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models

from core.sql import PreparedSelect, ctes
from idp.models import Grant

_SAMPLE_CODE = "idp:storage:sample-code"  # no code looks like this (codes are 30 letters and digits)
# Columns a code exchange never reads, left out of its one SELECT (their timestamptz values cost
# a Python-level parse each; the user's password hash has no business here).
_NOT_READ = (
    "created",
    "updated",
    "user__password",
    "user__last_login",
    "user__date_joined",
    "user__password_changed_at",
    "application__created",
    "application__updated",
)
_grant_by_code: PreparedSelect[Grant] = PreparedSelect(
    lambda code: Grant.objects.filter(code=code).select_related("user", "application").defer(*_NOT_READ),
    _SAMPLE_CODE,
)


def batching(using: str = DEFAULT_DB_ALIAS) -> bool:
    return bool(connections[using].vendor == "postgresql")


def grant_by_code(code: str) -> Grant | None:
    """The grant of a code (codes are unique), with its user and its client; None when there is none."""
    if batching():
        return _grant_by_code.first(code)
    return Grant.objects.filter(code=code).select_related("user", "application").defer(*_NOT_READ).first()


def _sequence(model: type[models.Model], connection: Any) -> tuple[str, str]:
    pk = model._meta.pk
    assert pk is not None
    return connection.ops.quote_name(model._meta.db_table), str(pk.column)


def spend_code(
    *,
    grant_pk: Any,
    client_pk: Any,
    ids_for: Sequence[type[models.Model]],
    also: Sequence[tuple[str, Sequence[Any]]] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[bool, list[int]]:
    """Deletes the grant (of this client), runs the UPDATEs of `also` (SQL with %s parameters, as
    core.sql.update_sql gives them) and takes a new primary key for each model of `ids_for`:
    (whether the grant was there, the keys). A second exchange of the same code waits on the
    grant's row lock and then deletes nothing (its caller then rolls the transaction back, the
    UPDATEs of `also` with it)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    opts = Grant._meta
    grant_id = quote(opts.get_field("id").column)
    application = quote(opts.get_field("application").column)  # type: ignore[union-attr]
    nexts = ", ".join("nextval(pg_get_serial_sequence(%s, %s))" for _ in ids_for)
    params: list[Any] = [grant_pk, client_pk]
    writes = "".join(", " + part for part in ctes(also, params, prefix="t"))
    sql = (
        f"WITH spent AS (DELETE FROM {quote(opts.db_table)} WHERE {grant_id} = %s AND {application} = %s "  # noqa: S608  # nosec B608 - identifiers from model metadata, quoted; values are parameters
        f"RETURNING 1){writes} SELECT (SELECT count(*) FROM spent)" + (f", {nexts}" if nexts else "")
    )
    for model in ids_for:
        params.extend(_sequence(model, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bool(row[0]), [int(v) for v in row[1:]]


def next_ids(
    ids_for: Sequence[type[models.Model]],
    *,
    also: Sequence[tuple[str, Sequence[Any]]] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> list[int]:
    """New primary keys for rows of these models (and the UPDATEs of `also`), in one statement."""
    if not ids_for:
        return []
    connection = connections[using]
    nexts = ", ".join("nextval(pg_get_serial_sequence(%s, %s))" for _ in ids_for)
    params: list[Any] = []
    writes = ctes(also, params, prefix="t")
    for model in ids_for:
        params.extend(_sequence(model, connection))
    sql = ("WITH " + ", ".join(writes) + " " if writes else "") + f"SELECT {nexts}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return [int(v) for v in row]
