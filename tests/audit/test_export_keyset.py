"""The CSV export reads keyset pages ((occurred_at, id) after the last row), not one long cursor."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import selectors
from audit.forms import EventFilters
from tests.audit.helpers import make_events


def test_pages_follow_each_other_without_loss_or_repeat_across_equal_timestamps() -> None:
    moment = timezone.now() - timedelta(days=40)
    # 2,500 events in one microsecond (a page boundary falls inside them), around others.
    before = make_events(700, start=moment - timedelta(hours=1))
    same = make_events(2500, start=moment, step_seconds=0)
    after = make_events(800, start=moment + timedelta(minutes=1))
    expected = [e.public_id for e in before + same + after]
    with CaptureQueriesContext(connection) as queries:
        rows = list(selectors.export_rows(filters=EventFilters(), chunk_size=1000))
    public_ids = [row[1] for row in rows]
    assert public_ids == expected  # time order, ties by id, each event once
    selects = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(selects) == 5  # four full pages of 1000, then an empty one that ends the export
    assert all("LIMIT 1000" in q["sql"] for q in selects)


def test_filters_apply_to_every_page() -> None:
    start = timezone.now() - timedelta(days=3)
    make_events(1500, start=start, country="NL")
    make_events(1500, start=start, country="DE")
    rows = list(selectors.export_rows(filters=EventFilters(country="DE"), chunk_size=400))
    assert len(rows) == 1500
    country = [name for name, _ in selectors.CSV_COLUMNS].index("country")
    assert {row[country] for row in rows} == {"DE"}
    times = [row[0] for row in rows]
    assert times == sorted(times)


def test_without_server_side_cursors_the_export_still_reads_page_by_page(monkeypatch: object) -> None:
    """PgBouncer in transaction mode disables server-side cursors: .iterator() would then fetch the
    whole range at once. Pages keep each fetch at chunk_size rows."""
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    make_events(2100, start=timezone.now() - timedelta(days=1))
    fetched: list[int] = []
    with CaptureQueriesContext(connection) as queries:
        for _ in selectors.export_rows(filters=EventFilters(), chunk_size=500):
            fetched.append(len(queries.captured_queries))
    # Rows arrive while later pages are still unread: 5 queries, the first rows after the first one.
    assert fetched[0] == 1 and fetched[-1] == 5 and len(fetched) == 2100
