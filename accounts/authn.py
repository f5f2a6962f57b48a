"""How a login was authenticated, and re-authentication ("sudo mode"): the one record and the one check.

Every channel reads the same record: the web session, the mobile API's token claims and the
identity provider's ID tokens carry `amr` (RFC 8176 values), `auth_time` and the level reached
(`acr`). `session_authenticated` is the only writer for the web: it records the proof, cycles
the session key and writes the audit event. `require_recent_auth` is the only check, for the web,
the API, staff actions and payments alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

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
    sid = session.get("sid")
    if auth_time is None or login_at is None or not sid:
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
