from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from risk.models import KnownDevice
from risk.tasks import known_devices_prune


def test_devices_unseen_for_longer_than_the_cookie_lives_are_pruned(user, settings):
    now = timezone.now()
    old = KnownDevice.objects.create(
        user=user, device_id_hash="a" * 64, name="Old", last_seen_at=now - timedelta(days=401)
    )
    recent = KnownDevice.objects.create(user=user, device_id_hash="b" * 64, name="Recent", last_seen_at=now)
    assert known_devices_prune() == 1
    assert not KnownDevice.objects.filter(pk=old.pk).exists()
    assert KnownDevice.objects.filter(pk=recent.pk).exists()
