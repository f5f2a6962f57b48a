from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from accounts import revocation
from accounts.models import User, UserSession
from core import context


class SessionRegistryMiddleware:
    """Ends web sessions that were revoked, outlived their absolute lifetime, or left the registry.

    The revocation list in Redis is checked on every request; the registry row in PostgreSQL
    is read (and last-seen written) at most once per SESSION_TOUCH_INTERVAL, so that a lost
    Redis entry still ends the session within that interval.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/") or request.path_info.startswith("/static/"):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if isinstance(user, User) and user.is_authenticated:
            context.update(user_public_id=str(user.public_id))
            reason = self._ended_reason(request, user)
            if reason:
                logout(request)
                login_url = reverse("accounts:login")
                return HttpResponseRedirect(f"{login_url}?{urlencode({'reason': reason})}")
        return self.get_response(request)

    def _ended_reason(self, request: HttpRequest, user: User) -> str | None:
        session = request.session
        sid = session.get("sid")
        if not sid:
            return "ended"
        # Live, and this user's: Redis when warm, else the registry (a wiped Redis fails closed).
        reason = revocation.revoked_reason(sid, subject=str(user.public_id))
        if reason:
            return reason
        now = timezone.now()
        auth_time = float(session.get("auth_time", 0))
        login_at = float(session.get("login_at", auth_time))
        if now.timestamp() - login_at > settings.SESSION_ABSOLUTE_TIMEOUT:
            _timed_out(sid=sid, user=user, reason="expired")
            return "expired"
        last_activity = float(session.get("last_activity", auth_time))
        if now.timestamp() - last_activity > settings.SESSION_IDLE_TIMEOUT:
            _timed_out(sid=sid, user=user, reason="idle")
            return "idle"
        session["last_activity"] = now.timestamp()
        touched = float(session.get("touched", 0))
        if now.timestamp() - touched >= settings.SESSION_TOUCH_INTERVAL:
            row = UserSession.objects.filter(id=sid, user=user).only("ended_at", "end_reason").first()
            if row is None or row.ended_at is not None:
                return (row.end_reason if row else "") or "ended"
            UserSession.objects.filter(id=sid).update(last_seen_at=now)
            session["touched"] = now.timestamp()
        return None


def _timed_out(*, sid: str, user: User, reason: str) -> None:
    """A timeout ends the login like any other end: audit row and revocation (session_end)."""
    from accounts.services import session_end

    user_session = UserSession.objects.filter(id=sid, user=user).first()
    if user_session is not None:
        session_end(user_session=user_session, reason=reason)


def session_started_at(request: HttpRequest) -> datetime | None:
    value = request.session.get("auth_time")
    return datetime.fromtimestamp(float(value), tz=UTC) if value else None
