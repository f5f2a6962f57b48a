from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from notifications.services import DeliveryError, outbox_deliver, outbox_due_ids

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=None, acks_late=True)
def outbox_send(self, message_id: str) -> str | None:  # type: ignore[no-untyped-def]
    try:
        status = outbox_deliver(message_id=message_id)
    except DeliveryError as exc:
        if self.request.is_eager:
            # Eager mode (dev, tests): no worker to retry on; the beat task resends.
            return "pending"
        countdown = settings.OUTBOX_BACKOFF_SECONDS * (2 ** min(self.request.retries, 8))
        raise self.retry(exc=exc, countdown=countdown) from exc
    return str(status) if status else None


@shared_task
def outbox_resend_pending() -> int:
    """Delivers what a lost broker message or a failed attempt left pending."""
    sent = 0
    for message_id in outbox_due_ids():
        try:
            outbox_deliver(message_id=message_id)
            sent += 1
        except DeliveryError:
            continue
    return sent
