"""The web-only middleware, skipped on the JSON API (settings.API_LEAN_PATH_PREFIX, /api/v1/) and on the
provider's client-authenticated endpoints (settings.API_LEAN_PATHS: token, PAR, revocation, introspection).

An API request authenticates with a bearer token in DRF (never a cookie), sends no form, renders
no template and sees no flash message, so sessions, Django's cookie authentication, the
session registry, django-otp, the pending-login and password-change redirects and messages have
nothing to do there; under load they cost as much CPU as the view itself. Each class here is the
named middleware, passing /api/v1/ requests straight through (its process_view too), so
settings.MIDDLEWARE keeps one ordered list and the test client runs the same stack as gunicorn.
CSRF stays the stock middleware (Django's checks look for it by name): DRF's views are
csrf_exempt, so on the API it returns at its first test.

The API's answers still get every security header: SecurityMiddleware, SecurityHeadersMiddleware,
X-Frame-Options, and a fixed Content-Security-Policy (`default-src 'none'; frame-ancestors
'none'`: JSON loads nothing) instead of the nonce-carrying page policy. The Swagger UI under
/api/docs/ is a page and keeps the whole stack.
"""

from __future__ import annotations

import os
from typing import Any

import csp.middleware
import django.contrib.auth.middleware
import django.contrib.messages.middleware
import django.contrib.sessions.middleware
import django_otp.middleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse

import accounts.middleware
import accounts.password_change
import mfa.middleware

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def is_api(request: HttpRequest) -> bool:
    """A cookie-less request: the JSON API, or one of the provider's client-authenticated endpoints.

    Worked out once per request and kept on it: eight middleware ask, and each answer read two
    settings (about 1 % of a bearer read's profile)."""
    known = request.__dict__.get("_portal_is_api")
    if known is not None:
        return bool(known)
    path = request.path_info
    prefix = settings.API_LEAN_PATH_PREFIX
    answer = (bool(prefix) and path.startswith(prefix)) or path in settings.API_LEAN_PATHS
    request.__dict__["_portal_is_api"] = answer
    return answer


def web_only(cls: type) -> type:
    """`cls`, passing API requests straight to the next middleware."""

    def __call__(self: Any, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            return self.get_response(request)  # type: ignore[no-any-return]
        return cls.__call__(self, request)  # type: ignore[operator,no-any-return]

    namespace: dict[str, Any] = {
        "__call__": __call__,
        "__doc__": f"{cls.__doc__ or cls.__name__} (not on the API)",
        # The pass-through is synchronous: under ASGI Django adapts it rather than handing it a coroutine.
        "sync_capable": True,
        "async_capable": False,
    }
    if hasattr(cls, "process_view"):

        def process_view(self: Any, request: HttpRequest, *args: Any) -> Any:
            if is_api(request):
                return None
            return cls.process_view(self, request, *args)  # type: ignore[attr-defined]

        namespace["process_view"] = process_view
    namespace["__module__"] = __name__
    return type(cls.__name__, (cls,), namespace)


SessionMiddleware = web_only(django.contrib.sessions.middleware.SessionMiddleware)
AuthenticationMiddleware = web_only(django.contrib.auth.middleware.AuthenticationMiddleware)
SessionRegistryMiddleware = web_only(accounts.middleware.SessionRegistryMiddleware)
OTPMiddleware = web_only(django_otp.middleware.OTPMiddleware)
PendingLoginMiddleware = web_only(mfa.middleware.PendingLoginMiddleware)
MessageMiddleware = web_only(django.contrib.messages.middleware.MessageMiddleware)
PasswordChangeRequiredMiddleware = web_only(accounts.password_change.PasswordChangeRequiredMiddleware)


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's policy for pages; a fixed, strict one for the API's JSON."""

    sync_capable = True
    async_capable = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            response: HttpResponse = self.get_response(request)  # type: ignore[assignment]
            response.headers.setdefault("Content-Security-Policy", API_CSP)
            return response
        return super().__call__(request)  # type: ignore[return-value]


# The CGI/WSGI names a server sets from the request (PEP 3333): never taken for process environment.
_REQUEST_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "REMOTE_ADDR",
        "REMOTE_HOST",
        "REMOTE_PORT",
        "REMOTE_USER",
        "AUTH_TYPE",
        "GATEWAY_INTERFACE",
        "SERVER_SOFTWARE",
        "RAW_URI",
    }
)


def process_environment_keys(names: Any) -> tuple[str, ...]:
    """The process environment's names that a request's WSGI environ should not carry: every one but
    the request's own CGI names and HTTP_* (those a client may send, kept whatever their origin)."""
    return tuple(
        name
        for name in names
        if name not in _REQUEST_KEYS and not name.startswith("HTTP_") and not name.startswith("wsgi.")
    )


def buffered_wsgi(application: Any, environment: Any = None) -> Any:
    """The WSGI application, handing the server a response already in memory as one bytes object,
    and seeing only the request in its environ.

    Django returns the HttpResponse itself as the WSGI iterable, so the server iterates it and
    calls its close() after sending. granian (the shipped server) sends a *list* of bytes in one
    call from Rust, but walks any other iterable chunk by chunk through Python: under load that
    walk was ~16 % of a bearer read's samples (py-spy, GIL). A non-streaming response's body is
    already complete, so it is handed over as [body], after close() has run (Django's
    request_finished: connections returned, upload files closed) exactly once. Streaming and file
    responses are passed through unchanged.

    granian also copies the whole process environment into every request's environ (PEP 3333
    allows it), so request.META held the deployment's variables, DATABASE_URL and the key
    variables included: a risk for anything that logs or reports META, and work for everything
    that walks it (Django builds `request.headers` from every META name, DRF reads the
    Authorization header through it: ~5 % of a bearer read with the bench's 60 variables). Those
    names (`environment`, default os.environ at start-up) are dropped before Django sees the request.
    """
    from django.http import HttpResponse

    drop = process_environment_keys(os.environ if environment is None else environment)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        pop = environ.pop
        for name in drop:
            pop(name, None)
        response = application(environ, start_response)
        if isinstance(response, HttpResponse) and not response.streaming:
            try:
                body = response.content
            finally:
                response.close()
            return [body]
        return response

    wsgi.__doc__ = buffered_wsgi.__doc__
    return wsgi
