from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core import cached, context
from core.errors import DomainError
from core.net import client_ip, user_agent_family

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Gives each request an id and records who sent it, for audit rows and log lines; the scope of
    the request's prefetched cache reads (core.cached.request_scope)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if settings.TRUSTED_PROXY_COUNT and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = context.set_context(
            context.RequestContext(
                request_id=request_id,
                ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
                ua_family=user_agent_family(request),
            )
        )
        try:
            with cached.request_scope():
                response = self.get_response(request)
        finally:
            context.reset_context(token)
        response["X-Request-ID"] = request_id
        return response


class SecurityHeadersMiddleware:
    """Headers Django's SecurityMiddleware does not set."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if request.user.is_authenticated if hasattr(request, "user") else False:
            response.setdefault("Cache-Control", "no-store")
        return response


_TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "Already done",
    410: "No longer available",
    413: "Too large",
    429: "Too many attempts",
}


def wants_json(request: HttpRequest) -> bool:
    """A fetch() from one of our pages (it posts JSON, or asks for JSON) rather than a page load."""
    return request.content_type == "application/json" or "application/json" in request.headers.get("Accept", "")


class DomainErrorMiddleware:
    """The web's one place for a service's refusal: a DomainError raised out of a view becomes the
    error page (or, for a JSON endpoint, the JSON error body) with the error's status and message.

    The API never gets here: DRF's exception handler (core.api) answers inside the view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError):
            return None
        from core.views import error_page

        response: HttpResponse
        if wants_json(request) or request.path_info.startswith("/api/"):
            response = JsonResponse(exception.body(), status=exception.status)
        else:
            title = _TITLES.get(exception.status, "That did not work")
            response = error_page(request, exception.status, title, exception.message)
        retry = exception.retry_after_seconds
        if retry is not None:
            response["Retry-After"] = str(retry)
        return response
