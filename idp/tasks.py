"""Celery tasks of the provider. Back-channel logout tokens travel through the outbox
(notifications.tasks: outbox_send, outbox_resend_pending retry them); this prunes what expired."""

from __future__ import annotations

from celery import shared_task
from django.core.management import call_command


@shared_task
def tokens_clear_expired() -> None:
    """Deletes expired access tokens, grants and spent refresh tokens (DOT's cleartokens)."""
    call_command("cleartokens")
