"""core.postgresql: the per-request health check polls the socket; SELECT 1 only when in doubt.

Against the real test database: a healthy idle connection is taken as it is (no SELECT 1), and a
connection the server ended (pg_terminate_backend, what a restart or failover does to it) is
found dead before the request's first query, which then runs on a new connection instead of
failing. The hot paths' long one-statement writes are parsed once per process.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
import pytest
from django.db import connection, connections

from core.postgresql.base import DatabaseWrapper, idle_and_quiet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def select_one_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts Django's SELECT 1 health checks (the real check still runs)."""
    calls: list[int] = []
    real = DatabaseWrapper.is_usable

    def counting(self: DatabaseWrapper) -> bool:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(DatabaseWrapper, "is_usable", counting)
    return calls


def _fresh_backend_pid() -> int:
    """A connection of the test's own: one a previous test opened may be older than CONN_MAX_AGE
    (60 s), and Django rightly closes an obsolete connection between requests."""
    connection.close()
    return _backend_pid()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _next_request() -> None:
    """What Django does between requests (request_started/finished): the next query re-checks."""
    connection.close_if_unusable_or_obsolete()
    assert connection.health_check_done is False  # type: ignore[attr-defined]


def test_the_shipped_engine_is_this_backend() -> None:
    assert isinstance(connections["default"], DatabaseWrapper)
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    assert connection.vendor == "postgresql"


def test_a_healthy_idle_connection_is_reused_without_a_select_1(select_one_calls: list[int]) -> None:
    pid = _fresh_backend_pid()
    _next_request()
    assert idle_and_quiet(connection.connection)
    assert _backend_pid() == pid  # the same connection
    assert select_one_calls == []
    assert connection.health_check_done is True  # type: ignore[attr-defined]


def test_a_connection_the_server_ended_is_replaced_before_the_request_s_first_query(
    select_one_calls: list[int],
) -> None:
    pid = _fresh_backend_pid()
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"] or "postgres",
        dbname=settings["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye reaches the socket (bounded wait on the socket itself, not a sleep).
    fd: Any = connection.connection.pgconn.socket
    assert select.select([fd], [], [], 5)[0], "the terminated backend's socket never became readable"
    _next_request()
    assert not idle_and_quiet(connection.connection)
    new_pid = _backend_pid()  # succeeds: Django's SELECT 1 failed, the connection was replaced
    assert new_pid != pid
    assert select_one_calls == [1]


def test_a_connection_inside_a_transaction_gets_django_s_own_check(select_one_calls: list[int]) -> None:
    _backend_pid()
    connection.connection.execute("BEGIN")
    try:
        assert not idle_and_quiet(connection.connection)
    finally:
        connection.connection.execute("ROLLBACK")
    assert idle_and_quiet(connection.connection)


def test_timestamps_are_parsed_by_psycopg_s_c_loader_with_django_s_tzinfo() -> None:
    import datetime as dt

    from django.db.backends.postgresql.psycopg_any import BaseTzLoader
    from psycopg import pq

    from core.postgresql.base import TzLoader

    with connection.cursor() as cursor:
        cursor.execute("SELECT '2026-03-29 01:30:00.5+02'::timestamptz, '1999-12-31 23:59:59+00'::timestamptz, now()")
        first, second, now = cursor.fetchone()
    loader = connection.connection.adapters.get_loader(1184, pq.Format.TEXT)
    if pq.__impl__ == "python":  # no C implementation: Django's own loader stays
        assert issubclass(loader, BaseTzLoader)
        return
    assert issubclass(loader, TzLoader) and loader.timezone is dt.UTC
    assert first == dt.datetime(2026, 3, 28, 23, 30, 0, 500000, tzinfo=dt.UTC) and first.tzinfo is dt.UTC
    assert second == dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert now.tzinfo is dt.UTC

    # The same answer as Django's loader for the same text, value and tzinfo.
    class DjangoLoader(BaseTzLoader):
        timezone = dt.UTC

    ours, django_s = loader(1184, connection.connection), DjangoLoader(1184, connection.connection)
    for text in (b"2026-12-01 16:20:50.123456+00", b"2026-06-30 12:00:00+05:30", b"0001-01-01 00:00:00+00"):
        assert ours.load(text) == django_s.load(text) and ours.load(text).tzinfo is django_s.load(text).tzinfo


def test_a_long_statement_s_template_is_parsed_once_per_process() -> None:
    """A statement above psycopg's stock limits (50 parameters) is parsed once, then taken from its cache."""
    from psycopg import _queries

    from core.postgresql import base as backend

    assert _queries.MAX_CACHED_STATEMENT_PARAMS >= backend.QUERY_TEMPLATE_MAX_PARAMS  # the raise applied
    values = list(range(120))
    sql = "SELECT " + " + ".join(["%s::int"] * len(values)) + " /* template-cache-test */"
    parsed = _queries._query2pg_client.cache_info()
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute(sql, values)
            assert cursor.fetchone() == (sum(values),)
    after = _queries._query2pg_client.cache_info()
    assert after.misses - parsed.misses == 1 and after.hits - parsed.hits >= 2
