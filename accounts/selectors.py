from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User, UserSession


def live_sessions(*, user: User) -> QuerySet[UserSession]:
    """Web sessions that have not ended, idled out or outlived their absolute lifetime,
    and mobile logins that have not ended."""
    now = timezone.now()
    idle_cutoff = now - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT + settings.SESSION_TOUCH_INTERVAL)
    absolute_cutoff = now - timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT)
    web_live = Q(kind=UserSession.Kind.WEB, last_seen_at__gte=idle_cutoff, created_at__gte=absolute_cutoff)
    return (
        UserSession.objects.filter(user=user, ended_at__isnull=True)
        .filter(web_live | ~Q(kind=UserSession.Kind.WEB))
        .order_by("-last_seen_at")
    )
