"""Re-authentication ("sudo mode"): the password or a factor proven within REAUTH_MAX_AGE_SECONDS.

`request.session["auth_time"]` is when the user last proved a credential (set at login by
accounts.services.session_start, refreshed here on re-authentication). The decorator sends
the user to /accounts/reauth/ and, when the request was a POST, holds the submitted form
server-side in the session (never fields that look like secrets) and replays it once the
user is back, so the submission is not lost.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils import timezone

HELD_SESSION_KEY = "reauth_held"
HOLD_FIELD = "_reauth_hold"
# Never held in the session: the user types these again.
_SECRET_FIELD_WORDS = ("password", "secret", "token", "otp", "code", "csrf", "pin")
_MAX_HELD = 3


class ReauthRequired(Exception):
    """The action needs a recent re-authentication; send the user to /accounts/reauth/."""

    def __init__(self, message: str = "Please confirm it is you to continue.") -> None:
        super().__init__(message)


def is_recently_authenticated(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    try:
        auth_time = float(request.session.get("auth_time") or 0)
    except (TypeError, ValueError):
        return False
    age = timezone.now().timestamp() - auth_time
    return 0 <= age <= settings.REAUTH_MAX_AGE_SECONDS


def require_recent_auth(*, request: HttpRequest) -> None:
    if not is_recently_authenticated(request):
        raise ReauthRequired


def mark_reauthenticated(*, request: HttpRequest) -> None:
    """Records a fresh proof of identity in this session (and a new session key)."""
    request.session["auth_time"] = timezone.now().timestamp()
    request.session.cycle_key()


def reauth_url(*, next_url: str, hold: str = "") -> str:
    params = {"next": next_url}
    if hold:
        params["hold"] = hold
    return reverse("mfa:reauth") + "?" + urlencode(params)


def _hold_post(request: HttpRequest) -> str:
    data: dict[str, list[str]] = {}
    for key in request.POST:
        if any(word in key.lower() for word in _SECRET_FIELD_WORDS) or key == HOLD_FIELD:
            continue
        data[key] = [value[:2000] for value in request.POST.getlist(key)][:50]
    hold_id = secrets.token_urlsafe(16)
    held: dict[str, Any] = dict(request.session.get(HELD_SESSION_KEY) or {})
    while len(held) >= _MAX_HELD:
        held.pop(next(iter(held)))
    held[hold_id] = {"path": request.path, "data": data, "at": timezone.now().timestamp()}
    request.session[HELD_SESSION_KEY] = held
    return hold_id


def held_submission(request: HttpRequest, hold_id: str) -> dict[str, Any] | None:
    held = request.session.get(HELD_SESSION_KEY) or {}
    item = held.get(hold_id)
    return item if isinstance(item, dict) else None


def _take_held(request: HttpRequest, hold_id: str) -> dict[str, Any] | None:
    held = dict(request.session.get(HELD_SESSION_KEY) or {})
    item = held.pop(hold_id, None)
    request.session[HELD_SESSION_KEY] = held
    return item if isinstance(item, dict) else None


def reauth_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """View decorator: re-authenticate first; a POST made meanwhile is replayed afterwards."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return HttpResponseRedirect(reverse(settings.LOGIN_URL) + "?" + urlencode({"next": request.path}))
        if not is_recently_authenticated(request):
            if request.method == "POST":
                return HttpResponseRedirect(reauth_url(next_url=request.path, hold=_hold_post(request)))
            return HttpResponseRedirect(reauth_url(next_url=request.get_full_path()))
        if request.method == "POST" and request.POST.get(HOLD_FIELD):
            # The confirmation page resubmits only the hold id (with a fresh CSRF token); the
            # form data comes from the session, and only for the path it was posted to.
            item = _take_held(request, request.POST[HOLD_FIELD])
            if item is not None and item.get("path") == request.path:
                replay = QueryDict(mutable=True)
                for key, values in item["data"].items():
                    replay.setlist(key, values)
                replay["csrfmiddlewaretoken"] = request.POST.get("csrfmiddlewaretoken", "")
                request.POST = replay  # type: ignore[assignment,misc]
        try:
            return view(request, *args, **kwargs)
        except ReauthRequired:
            # The service refused (the window closed during the request): same path as above.
            hold = _hold_post(request) if request.method == "POST" else ""
            return HttpResponseRedirect(reauth_url(next_url=request.path, hold=hold))

    return wrapper
