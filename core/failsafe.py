"""Fail closed, and say so: a backing service that is down gives a 503, never a 500.

Sessions, throttles, lockout counters and the token revocation list live in Redis, and every
state change in PostgreSQL. When either is unreachable nothing can be decided safely, so the
request is refused with a clear "try again in a moment" answer: the 503 page for the web, the
API's {"detail", "code"} shape for /api/. Nothing is half-done: the view's transaction rolled
back when the exception left it.

Two entry points catch the failure wherever it happens:
- `FailSafeMiddleware.process_exception` for exceptions raised inside a view;
- `unavailable_response_for_current_exception` called by the 500 handler (core.views.server_error)
  for exceptions raised inside another middleware (e.g. the session store), which Django turns
  into a call to the 500 handler with the exception still being handled.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError as DbInterfaceError
from django.db import OperationalError as DbOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import SimpleTemplateResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
UNAVAILABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    DbOperationalError,
    DbInterfaceError,
)
TITLE = "Service temporarily unavailable"
MESSAGE = "We cannot process your request right now. Nothing was changed. Please try again in a moment."


def is_unavailable(exc: BaseException | None) -> bool:
    """True for a backing service that cannot be reached (also when wrapped in another exception)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, UNAVAILABLE_EXCEPTIONS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def unavailable_response(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.path_info.startswith("/api/"):
        response = JsonResponse(
            {
                "detail": "The service is temporarily unavailable. Please try again in a moment.",
                "code": "service_unavailable",
            },
            status=503,
        )
    else:
        # Rendered here (not lazily): the page must not depend on the service that is down,
        # so no context processor reaching the session or the database is run.
        template = SimpleTemplateResponse(
            "error.html",
            {"title": TITLE, "message": MESSAGE, "status": 503, "request_id": getattr(request, "request_id", "")},
            status=503,
        )
        template.render()
        response = HttpResponse(template.content, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def unavailable_response_for_current_exception(request: HttpRequest) -> HttpResponse | None:
    """For the 500 handler: a 503 when the exception being handled is an unreachable service."""
    exc = sys.exc_info()[1]
    if not is_unavailable(exc):
        return None
    logger.error("backing service unavailable: %s", exc.__class__.__name__)
    return unavailable_response(request)


class FailSafeMiddleware:
    """Turns an unreachable Redis or PostgreSQL inside a view into a 503 (page or JSON)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_unavailable(exception):
            return None
        logger.error("backing service unavailable: %s", exception.__class__.__name__)
        return unavailable_response(request)
