"""After login, a customer whose current password turned out breached must change it first.

The login pipeline sets the session flag (accounts.passwords.require_password_change); until the
password changes, every page of the signed-in session sends the customer to the password change
page, which says why. Signing out, re-authenticating and static files stay reachable. The flag
holds the time it was set (or True, then the login time counts): a password changed after that
clears it on the next request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse

from accounts.models import User
from accounts.passwords import PASSWORD_CHANGE_REQUIRED_SESSION_KEY

_SKIPPED_PREFIXES = ("/api/", "/static/", "/healthz", "/.well-known/")


def _flag_time(request: HttpRequest) -> float | None:
    value = request.session.get(PASSWORD_CHANGE_REQUIRED_SESSION_KEY)
    if not value:
        return None
    if value is True:
        return float(request.session.get("login_at") or request.session.get("auth_time") or 0)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _allowed_paths() -> set[str]:
    paths = {reverse("accounts:password_change"), reverse("accounts:logout")}
    try:
        paths.add(reverse(settings.REAUTH_URL))
    except NoReverseMatch:
        pass
    return paths


class PasswordChangeRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(_SKIPPED_PREFIXES):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if not (isinstance(user, User) and user.is_authenticated):
            return self.get_response(request)
        flagged_at = _flag_time(request)
        if flagged_at is None:
            return self.get_response(request)
        changed = user.password_changed_at
        if changed is not None and changed.timestamp() > flagged_at:
            del request.session[PASSWORD_CHANGE_REQUIRED_SESSION_KEY]
            return self.get_response(request)
        if request.path_info in _allowed_paths():
            return self.get_response(request)
        return HttpResponseRedirect(reverse("accounts:password_change"))
