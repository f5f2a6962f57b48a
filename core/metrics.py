"""Prometheus metrics (prometheus_client): requests per view, security events, scrape-time gauges.

* Requests: `MetricsMiddleware` (first in MIDDLEWARE) counts every request by view name, method
  and status, and observes its latency; a few microseconds per request, no I/O.
* Security events: counted in one place, where every audit event is written
  (`audit.services.record` calls `security_event` as it inserts the row), so a login, lockout,
  second factor, step-up, exemption, token reuse or revocation is counted as it is audited, by
  type, outcome and detail (the second-factor method, the SCA exemption or the reason code, when
  the event has one). The CAPTCHA has its own counter (`captcha_checked`), since demanding one
  is not an audit event.
* Gauges read at scrape time: apps register cheap readers (`register_reader`) in their
  AppConfig.ready, e.g. the outbox backlog (notifications) and the audit chain status (audit),
  so `core` imports no business app and the request path pays nothing for them.
* Where: METRICS_PATH (default /metrics), answered by the middleware before host validation,
  sessions or CSRF, only to a client address in METRICS_ALLOWED_CIDRS or with
  `Authorization: Bearer <METRICS_TOKEN>`; anyone else gets a plain 404.
* Several processes: with PROMETHEUS_MULTIPROC_DIR set (the production image sets it), counters
  and histograms live in files shared by the gunicorn workers of one container and every scrape
  adds them up (prometheus_client's multiprocess mode; deploy/gunicorn.conf.py marks dead
  workers). Without it, each process reports its own counts only.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from time import perf_counter
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.net import client_ip

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "bp_http_requests",
    "HTTP requests by view (URL name), method and status code.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "bp_http_request_duration_seconds",
    "Time from the first middleware to the response, by view and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SECURITY_EVENTS = Counter(
    "bp_security_events",
    "Audit events by type (audit.events.EventType), outcome and detail: the second-factor method, the SCA "
    "exemption or the reason code when the event has one.",
    ["type", "outcome", "detail"],
)
CAPTCHA_CHECKS = Counter(
    "bp_captcha_checks",
    "Proof-of-work CAPTCHA checks on demanded logins by result (missing = demanded and not solved).",
    ["result"],
)

_LABEL = re.compile(r"^[a-z0-9_]{1,32}$")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _bounded(value: object) -> str:
    """A label value from a closed vocabulary, or "" (never free text: label sets stay small)."""
    text = str(value or "")
    return text if _LABEL.match(text) else ""


def security_event(event_type: str, outcome: str, *, detail: object = "") -> None:
    SECURITY_EVENTS.labels(str(event_type), str(outcome), _bounded(detail)).inc()


def captcha_checked(result: str) -> None:
    CAPTCHA_CHECKS.labels(_bounded(result) or "other").inc()


# --- Gauges read at scrape time ---------------------------------------------------------

Reader = Callable[[], Iterable[GaugeMetricFamily]]
_readers: dict[str, Reader] = {}


def register_reader(name: str, reader: Reader) -> None:
    """A function that yields gauges, run on every scrape (keep it to one or two indexed queries)."""
    _readers[name] = reader


class _ScrapeTimeCollector(Collector):
    def describe(self) -> list[GaugeMetricFamily]:
        return []  # registering must not run the readers (they query the database)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("bp_metrics_reader_up", "1 when the reader's queries answered.", labels=["reader"])
        for name, reader in sorted(_readers.items()):
            try:
                families = list(reader())
            except Exception:  # a failing reader must not fail the scrape; its gauge says so
                logger.warning("metrics reader %s failed", name, exc_info=True)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


_SCRAPE_TIME = _ScrapeTimeCollector()
REGISTRY.register(_SCRAPE_TIME)


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_SCRAPE_TIME)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# --- Who may read them ---------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs.split(",") if c.strip())


def metrics_allowed(request: HttpRequest) -> bool:
    token = str(getattr(settings, "METRICS_TOKEN", "") or "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    ip = ipaddress.ip_address(client_ip(request))
    return any(ip in network for network in _networks(str(settings.METRICS_ALLOWED_CIDRS)))


class MetricsMiddleware:
    """First middleware: serves METRICS_PATH, and counts and times every other request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.path = str(getattr(settings, "METRICS_PATH", "/metrics"))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == self.path:
            return _metrics_response(request)
        started = perf_counter()
        response = self.get_response(request)
        elapsed = perf_counter() - started
        match: Any = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else "") or "unresolved"
        method = request.method if request.method in _METHODS else "other"
        REQUESTS.labels(view, method, str(response.status_code)).inc()
        LATENCY.labels(view, method).observe(elapsed)
        return response


def _metrics_response(request: HttpRequest) -> HttpResponse:
    if request.method != "GET" or not metrics_allowed(request):
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
