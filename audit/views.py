"""The security team's reports: dashboard with charts, suspicious activity, streamed CSV export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit import charts, selectors
from audit.events import EventType, Outcome
from audit.forms import EventFilterForm, EventFilters, reports_form
from audit.roles import VIEW_REPORTS
from audit.services import record
from core.db_router import reads_from_replica

CSV_CHUNK_ROWS = 2000
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _reports_view(view: Any) -> Any:
    """Logged-in members of the security group (permission audit.view_reports) only."""
    return never_cache(login_required(permission_required(VIEW_REPORTS, raise_exception=True)(require_GET(view))))


def _day_or_moment(value: datetime | None, *, end: bool = False) -> str:
    """A date for the date picker when the bound is a midnight (an end bound: the day before),
    else the exact moment (the default range of the last hours)."""
    if value is None:
        return ""
    if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
        return ((value - timedelta(days=1)) if end else value).strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _query(filters: EventFilters) -> str:
    params = {
        "since": _day_or_moment(filters.since),
        "until": _day_or_moment(filters.until, end=True),
        "type": filters.type,
        "user": filters.user,
        "ip": filters.ip,
        "country": filters.country,
        "outcome": filters.outcome,
    }
    return urlencode({k: v for k, v in params.items() if v})


def _context(request: HttpRequest, form: EventFilterForm, filters: EventFilters | None) -> dict[str, Any]:
    return {
        "form": form,
        "filters": filters,
        "query": _query(filters) if filters else "",
        "chain": selectors.chain_status(),
    }


@_reports_view
@reads_from_replica  # the read replica when DATABASE_REPLICA_URL is set (core/db_router.py)
def reports_view(request: HttpRequest) -> HttpResponse:
    form = reports_form(request.GET)
    if not form.is_valid():
        return render(request, "reports/index.html", _context(request, form, None), status=400)
    filters = form.filters()
    data = selectors.charts_data(filters=filters)
    events = selectors.filter_events(filters=filters).select_related("user", "actor").order_by("-occurred_at", "-id")
    context = _context(request, form, filters)
    context.update(
        {
            "charts": [
                charts.time_chart(data["failed_logins"], title="Failed logins and lockouts"),
                charts.time_chart(data["mfa_failures"], title="Second-factor failures"),
                charts.time_chart(data["step_ups"], title="Payment step-ups passed and failed"),
                charts.time_chart(data["new_devices"], title="Logins from a new device"),
                charts.bar_chart(data["countries"], title="Logins by country"),
            ],
            "events": events[:100],
            "event_count": events.count(),
        }
    )
    sca = selectors.sca_report(filters=filters)
    context["sca"] = sca
    context["sca_chart"] = charts.bar_chart(
        [(row["label"], row["count"]) for row in sca["decisions"]], title="Payments by SCA decision"
    )
    return render(request, "reports/index.html", context)


@_reports_view
@reads_from_replica  # the read replica when DATABASE_REPLICA_URL is set (core/db_router.py)
def suspicious_view(request: HttpRequest) -> HttpResponse:
    form = reports_form(request.GET)
    if not form.is_valid():
        return render(request, "reports/suspicious.html", _context(request, form, None), status=400)
    filters = form.filters()
    context = _context(request, form, filters)
    context.update(selectors.suspicious_activity(filters=filters))
    return render(request, "reports/suspicious.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    elif hasattr(value, "isoformat"):
        value = value.isoformat()
    else:
        value = str(value)
    # Spreadsheets run cells that start like a formula: neutralise them.
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def _csv_stream(rows: Iterator[tuple[Any, ...]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in selectors.CSV_COLUMNS])
    buffer: list[str] = []
    for row in rows:
        buffer.append(writer.writerow([_cell(value) for value in row]))
        if len(buffer) >= 500:
            yield "".join(buffer)
            buffer = []
    if buffer:
        yield "".join(buffer)


@_reports_view
def events_csv_view(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Any range (no default), the page's filters; streamed from a server-side cursor."""
    form = reports_form(request.GET, default_hours=0)
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(str(m) for m in messages)}" for field, messages in form.errors.items())
        return HttpResponse(f"Invalid filters: {errors}\n", status=400, content_type="text/plain; charset=utf-8")
    filters = form.filters()
    record(
        type=EventType.AUDIT_EXPORTED,
        outcome=Outcome.SUCCESS,
        user=request.user,
        details={"format": "csv", **filters.as_details()},
    )
    rows = selectors.export_rows(filters=filters, chunk_size=CSV_CHUNK_ROWS)
    response = StreamingHttpResponse(_csv_stream(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
