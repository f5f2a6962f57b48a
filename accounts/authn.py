"""How a login was authenticated, and re-authentication ("sudo mode"): the one record and the one check.

Every channel reads the same record: the web session, the mobile API's token claims and the
identity provider's ID tokens carry `amr` (RFC 8176 values), `auth_time` and the level reached
(`acr`). `session_authenticated` is the only writer for the web: it records the proof, cycles
the session key and writes the audit event. `require_recent_auth` is the only check, for the web,
the API, staff actions and payments alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Literal
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils import timezone

from audit.events import EventType
from audit.services import record
from core.errors import DomainError

ACR_PASSWORD = "urn:bank-portal:acr:password"  # noqa: S105 (an acr name, not a secret)
ACR_MFA = "urn:bank-portal:acr:mfa"
ACR_VALUES = (ACR_PASSWORD, ACR_MFA)
# amr values that prove a factor other than the password (RFC 8176: otp, sms, hwk, ...).
SECOND_FACTOR_AMR = frozenset({"otp", "sms", "email", "hwk", "swk", "rec", "mfa"})

Level = Literal["password", "mfa"]


def acr_for(amr: Iterable[str]) -> str:
    """The level an `amr` list reaches: a second factor beside the password is `mfa`."""
    values = set(amr)
    return ACR_MFA if values & SECOND_FACTOR_AMR else ACR_PASSWORD


def level_of(acr: str) -> Level:
    return "mfa" if acr == ACR_MFA else "password"


def _ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


@dataclass(frozen=True)
class SessionAuth:
    """How the current web session was authenticated."""

    sid: str
    user_id: int
    amr: tuple[str, ...]
    auth_time: datetime
    login_at: datetime

    @property
    def acr(self) -> str:
        return acr_for(self.amr)

    @property
    def level(self) -> Level:
        return level_of(self.acr)

    def age_seconds(self) -> float:
        return (timezone.now() - self.auth_time).total_seconds()


def session_auth(request: HttpRequest) -> SessionAuth | None:
    """The authentication record of this web session, or None when not signed in."""
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    if user is None or not user.is_authenticated or session is None:
        return None
    auth_time = _ts(session.get("auth_time"))
    login_at = _ts(session.get("login_at")) or auth_time
    sid = session.get("sid") or ""
    if auth_time is None or login_at is None:
        return None
    amr = session.get("amr") or []
    return SessionAuth(
        sid=str(sid),
        user_id=int(user.pk),
        amr=tuple(str(a) for a in amr if isinstance(a, str)),
        auth_time=auth_time,
        login_at=login_at,
    )


class ReauthRequired(DomainError):
    """The action needs a recent proof of identity (or a higher level): re-authenticate first."""

    code = "reauth_required"
    status = 403
    default_message = "Please confirm it is you to continue."

    def __init__(self, message: str | None = None, *, level: Level = "password", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.level = level


def is_recently_authenticated(request: HttpRequest, *, max_age: int | None = None, level: Level = "password") -> bool:
    """A credential proven within `max_age` seconds (REAUTH_MAX_AGE_SECONDS) at `level` or above."""
    record = session_auth(request)
    if record is None:
        return False
    limit = settings.REAUTH_MAX_AGE_SECONDS if max_age is None else max_age
    age = record.age_seconds()
    if not 0 <= age <= limit:
        return False
    return level == "password" or record.level == "mfa"


def _api_auth(request: HttpRequest) -> tuple[datetime, tuple[str, ...]] | None:
    """(auth_time, amr) of the token behind an API request, when it carries them."""
    claims = getattr(request, "auth", None)
    getter = getattr(claims, "get", None)
    if getter is None:
        return None
    auth_time = _ts(getter("auth_time"))
    amr = getter("amr") or []
    if auth_time is None:
        return None
    return auth_time, tuple(str(a) for a in amr if isinstance(a, str))


def require_recent_auth(request: HttpRequest, *, max_age: int | None = None, level: Level = "password") -> None:
    """The one re-authentication check, for the web (session), the API (token), staff and payments.

    Raises ReauthRequired unless a credential was proven within `max_age` seconds (default
    REAUTH_MAX_AGE_SECONDS) at `level` or above. The web answers it with the re-authentication
    page (reauth_url); the API with 403 `reauth_required` (log in again, or step up).
    """
    limit = settings.REAUTH_MAX_AGE_SECONDS if max_age is None else max_age
    if getattr(request, "session", None) is not None and session_auth(request) is not None:
        if is_recently_authenticated(request, max_age=limit, level=level):
            return
        raise ReauthRequired(level=level)
    api = _api_auth(request)
    if api is not None:
        auth_time, amr = api
        age = (timezone.now() - auth_time).total_seconds()
        if 0 <= age <= limit and (level == "password" or acr_for(amr) == ACR_MFA):
            return
    raise ReauthRequired(level=level)


def reauth_url(*, next_url: str, level: Level = "password", hold: str = "", max_age: int | None = None) -> str:
    """Where to send the user to prove who they are again (the page that REAUTH_URL names)."""
    params = {"next": next_url}
    if level != "password":
        params["level"] = level
    if hold:
        params["hold"] = hold
    if max_age is not None:
        params["max_age"] = str(int(max_age))
    return reverse(settings.REAUTH_URL) + "?" + urlencode(params)


# --- The one writer of the record ------------------------------------------------------------------


def session_authenticated(
    request: HttpRequest, *, amr: Iterable[str], method: str, login: bool = False, user: Any = None
) -> None:
    """Records a proof of identity in this web session: `auth_time`, the `amr` values, a new
    session key, and (for a re-authentication) its audit event and the registry row's amr.

    The login itself (accounts.services.session_start) calls it with login=True: its audit event
    is the login's own. `login_at` is set only then: re-authentication never extends a session's
    absolute lifetime.
    """
    from accounts.models import UserSession

    now = timezone.now()
    session = request.session
    merged = [] if login else [str(a) for a in (session.get("amr") or [])]
    for value in amr:
        if value not in merged:
            merged.append(value)
    session["auth_time"] = now.timestamp()
    session["amr"] = merged
    if login:
        session["login_at"] = now.timestamp()
        return  # django.contrib.auth.login() has just cycled the key
    session.cycle_key()
    sid = session.get("sid")
    subject = user if user is not None else getattr(request, "user", None)
    with transaction.atomic():
        if sid:
            from accounts.services import session_key_hash

            UserSession.objects.filter(id=sid).update(
                amr=merged, session_key_hash=session_key_hash(session.session_key or "")
            )
        record(type=EventType.REAUTHENTICATED, user=subject, details={"method": method, "amr": merged, "sid": sid})


# --- The web's re-authentication step: a decorator that keeps a submitted form -----------------------

HELD_SESSION_KEY = "reauth_held"
HOLD_FIELD = "_reauth_hold"
# Never held in the session: the user types these again.
_SECRET_FIELD_WORDS = ("password", "secret", "token", "otp", "code", "csrf", "pin")
_MAX_HELD = 3


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


def reauth_redirect(request: HttpRequest, *, level: Level = "password") -> HttpResponse:
    """Sends the user to re-authenticate; a POST made meanwhile is held and replayed afterwards."""
    if request.method == "POST":
        return HttpResponseRedirect(reauth_url(next_url=request.path, hold=_hold_post(request), level=level))
    return HttpResponseRedirect(reauth_url(next_url=request.get_full_path(), level=level))


def reauth_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """View decorator: re-authenticate first; a POST made meanwhile is replayed afterwards."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return HttpResponseRedirect(reverse(settings.LOGIN_URL) + "?" + urlencode({"next": request.path}))
        if not is_recently_authenticated(request):
            return reauth_redirect(request)
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
        except ReauthRequired as exc:
            # The service refused (the window closed during the request): same path as above.
            return reauth_redirect(request, level=exc.level)

    return wrapper
