"""Keeps a half-logged-in session (password right, second factor pending) on the second step."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.pipeline import SESSION_KEY as PENDING_SESSION_KEY

ENROL_REQUIRED_SESSION_KEY = "mfa_enrol_required"

# Paths a pending login may reach: the second step itself, leaving, and static files.
_PENDING_ALLOWED_PREFIXES = ("/accounts/login/mfa/", "/accounts/logout/", "/static/")
# Paths a staff login without a strong factor may reach: enrolment of TOTP / passkeys.
_ENROL_ALLOWED_PREFIXES = (
    "/security/mfa/totp/",
    "/security/mfa/passkeys/",
    "/security/mfa/recovery-codes/",
    "/accounts/reauth/",
    "/accounts/logout/",
    "/static/",
)


class PendingLoginMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith("/api/"):
            return self.get_response(request)
        session = getattr(request, "session", None)
        if session is None:
            return self.get_response(request)
        user = getattr(request, "user", None)
        authenticated = bool(user is not None and user.is_authenticated)
        if not authenticated and session.get(PENDING_SESSION_KEY):
            if path == "/accounts/login/" and request.method == "POST":
                # A new password attempt abandons the pending login.
                session.pop(PENDING_SESSION_KEY, None)
            elif not path.startswith(_PENDING_ALLOWED_PREFIXES):
                return HttpResponseRedirect(reverse("mfa:login_step"))
        elif authenticated and session.get(ENROL_REQUIRED_SESSION_KEY) and not path.startswith(_ENROL_ALLOWED_PREFIXES):
            return HttpResponseRedirect(reverse("mfa:enrol_required"))
        return self.get_response(request)
