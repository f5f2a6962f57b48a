from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from risk.models import KnownDevice


@shared_task
def known_devices_prune() -> int:
    """Forgets devices not seen for longer than their cookie lives; they could never match again."""
    cutoff = timezone.now() - timedelta(days=settings.RISK_DEVICE_COOKIE_AGE_DAYS)
    deleted, _ = KnownDevice.objects.filter(last_seen_at__lt=cutoff).delete()
    return int(deleted)
