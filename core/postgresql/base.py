"""Django's PostgreSQL backend (psycopg 3), with a health check that needs no round trip when it can.

`CONN_HEALTH_CHECKS=True` makes Django test a reused connection before the first query of every
request with `SELECT 1`: a round trip and a statement on the server for each request that touches
the database (~10 % of a one-query bearer read's CPU, and as many statements on PostgreSQL as the
reads themselves). A connection the server has closed (restart, failover, idle timeout,
pg_terminate_backend) makes its socket readable: the server's FATAL message or the end of the
stream is waiting there, while a healthy idle connection has nothing to read. So an idle
connection whose socket has nothing waiting (one poll() with a zero timeout) is taken as usable,
and anything else gets Django's own `SELECT 1` test, which reads what is waiting and closes the
connection when it fails. What neither can see is a peer that vanished without closing (a cut
cable): `SELECT 1` would then hang until the TCP timeout too, so nothing is lost there.

Timestamps: Django registers its own timestamptz loader on every connection (to set the tzinfo it
wants), a subclass of psycopg's *pure-Python* loader, which parses each value with a regular
expression (~5 us; 7 % of a code exchange's grant read). psycopg's C loader (psycopg-binary) cannot
be subclassed, so `TzLoader` wraps it: the C parse, then Django's own `replace(tzinfo=...)`
(~1.1 us). Without the C implementation Django's loader stays.

Query templates: Django's psycopg backend merges parameters client-side, and psycopg parses each
query's `%s` placeholders into a template it caches (an LRU of 128) only for queries of at most 50
parameters and 4096 bytes. The hot paths' one-statement writes are longer: a login's final write has
58 parameters (~150 us to parse, every login), a payment's final statement 80. `QUERY_TEMPLATE_*`
below raise both limits, so these few statements are parsed once per process; the cache stays at
128 entries, so what it can hold does not grow (at most 128 templates of up to 32 KiB). If psycopg
renames these module constants the raise is skipped and `tests/core/test_postgresql_backend.py`
says so.

Everything else is Django's backend unchanged (`is_usable()` after an error still runs SELECT 1).
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg import _queries, adapt, adapters, postgres, pq

QUERY_TEMPLATE_MAX_PARAMS = 512
QUERY_TEMPLATE_MAX_BYTES = 32 * 1024
if hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS") and hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH"):
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, QUERY_TEMPLATE_MAX_PARAMS)
    _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, QUERY_TEMPLATE_MAX_BYTES)

_TIMESTAMPTZ_OID = postgres.types["timestamptz"].oid
# psycopg's C loader when psycopg-binary (or psycopg-c) is the implementation in use.
_C_LOADER: Any = adapters.get_loader(_TIMESTAMPTZ_OID, pq.Format.TEXT) if pq.__impl__ != "python" else None


class TzLoader(adapt.Loader):
    """Django's BaseTzLoader (load, then `replace(tzinfo=timezone)`) on psycopg's C parser."""

    timezone: Any = None

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._parse = _C_LOADER(oid, context).load

    def load(self, data: Any) -> Any:
        return self._parse(data).replace(tzinfo=self.timezone)


def register_tzloader(tz: Any, context: Any) -> None:
    """As django.db.backends.postgresql.psycopg_any.register_tzloader, with TzLoader."""
    loader = type("SpecificTzLoader", (TzLoader,), {"timezone": tz})
    context.adapters.register_loader("timestamptz", loader)


def idle_and_quiet(connection: Any) -> bool:
    """True when this psycopg connection is open, outside a transaction and has nothing to read."""
    try:
        if connection.broken or connection.closed:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except Exception:  # any doubt: Django's SELECT 1 decides
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        context = params.get("context")
        if _C_LOADER is not None and context is not None:  # Django's adapters template, per connection
            register_tzloader(self.timezone, context)
        return params

    def close_if_health_check_failed(self) -> None:
        state: Any = self  # Django's health-check attributes (not in django-stubs)
        if (
            self.connection is not None
            and state.health_check_enabled
            and not state.health_check_done
            and not self.pool
            and idle_and_quiet(self.connection)
        ):
            state.health_check_done = True
            return
        super().close_if_health_check_failed()
