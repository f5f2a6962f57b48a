from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User, UserSession


def live_sessions(*, user: User) -> QuerySet[UserSession]:
    """Logins that have not ended, idled out or outlived their absolute lifetime (web sessions
    and app logins alike)."""
    now = timezone.now()
    idle_cutoff = now - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT + settings.SESSION_TOUCH_INTERVAL)
    absolute_cutoff = now - timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT)
    web_live = Q(kind=UserSession.Kind.WEB, last_seen_at__gte=idle_cutoff, created_at__gte=absolute_cutoff)
    # An app login is over once its refresh token can no longer have been renewed.
    mobile_live = Q(
        kind=UserSession.Kind.MOBILE,
        last_seen_at__gte=now - timedelta(seconds=settings.JWT_REFRESH_LIFETIME_SECONDS),
        created_at__gte=now - timedelta(seconds=settings.JWT_REFRESH_ABSOLUTE_SECONDS),
    )
    return (
        UserSession.objects.filter(user=user, ended_at__isnull=True)
        .filter(web_live | mobile_live)
        .order_by("-last_seen_at")
    )
