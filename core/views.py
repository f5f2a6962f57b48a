from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means unhealthy, whatever its type
        logger.warning("healthz: database unavailable: %s", exc.__class__.__name__)
        checks["database"] = "unavailable"
    try:
        cache.set("healthz", "1", timeout=5)
        checks["cache"] = "ok" if cache.get("healthz") == "1" else "unavailable"
    except Exception as exc:  # any failure means unhealthy, whatever its type
        logger.warning("healthz: cache unavailable: %s", exc.__class__.__name__)
        checks["cache"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    failing = [name for name, value in checks.items() if value != "ok"]
    body: dict[str, object] = {"status": "ok" if healthy else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=200 if healthy else 503)


def error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        codes = {400: "bad_request", 403: "permission_denied", 404: "not_found", 500: "server_error"}
        return JsonResponse({"detail": message, "code": codes.get(status, "error")}, status=status)
    context = {"title": title, "message": message, "status": status, "request_id": getattr(request, "request_id", "")}
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 403, "Not allowed", "You do not have permission to see this page.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 404, "Page not found", "We could not find that page.")


def server_error(request: HttpRequest) -> HttpResponse:
    from core.failsafe import unavailable_response_for_current_exception

    # Raised in a middleware (e.g. the session store with Redis down): a 503, not a 500.
    unavailable = unavailable_response_for_current_exception(request)
    if unavailable is not None:
        return unavailable
    return error_page(request, 500, "Something went wrong", "Please try again in a moment.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_page(
        request,
        403,
        "Your form expired",
        "For your security, the form could not be accepted. Please go back, reload the page and try again.",
    )
