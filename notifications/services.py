"""Queue messages in the outbox (inside the caller's transaction) and deliver them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.crypto import decrypt, encrypt
from notifications.models import OutboxMessage

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The provider refused or did not answer; the message stays pending."""


def _dispatch_on_commit(message_id: str) -> None:
    def _send() -> None:
        from notifications.tasks import outbox_send

        try:
            outbox_send.delay(message_id)
        except Exception:  # the broker is down: the beat task will pick the row up
            logger.warning("broker unavailable; outbox message %s left pending", message_id)

    transaction.on_commit(_send)


def email_enqueue(
    *,
    to: str,
    template: str,
    context: dict[str, Any],
    purpose: str,
    user: Any = None,
) -> OutboxMessage:
    """Renders emails/<template>_subject.txt, .txt and .html and queues the message."""
    ctx = {"BANK_NAME": settings.BANK_NAME, "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", ctx).split())
    text = render_to_string(f"emails/{template}.txt", ctx)
    html = render_to_string(f"emails/{template}.html", ctx)
    with transaction.atomic():
        message = OutboxMessage.objects.create(
            channel=OutboxMessage.Channel.EMAIL,
            purpose=purpose,
            user=user if getattr(user, "pk", None) else None,
            recipient=to,
            subject=subject[:255],
            body_encrypted=encrypt(text),
            html_encrypted=encrypt(html),
        )
        _dispatch_on_commit(str(message.id))
    return message


def sms_enqueue(*, to: str, body: str, purpose: str, user: Any = None) -> OutboxMessage:
    with transaction.atomic():
        message = OutboxMessage.objects.create(
            channel=OutboxMessage.Channel.SMS,
            purpose=purpose,
            user=user if getattr(user, "pk", None) else None,
            recipient=to,
            body_encrypted=encrypt(body),
        )
        _dispatch_on_commit(str(message.id))
    return message


# purpose -> builds the form fields of a webhook from its stored payload, at each attempt
# (so a signed token with a short lifetime is fresh even when the receiver was down for long).
# Registered by the app that owns the purpose (idp registers "oidc_backchannel_logout").
_webhook_builders: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {}


def webhook_builder_register(purpose: str, builder: Callable[[dict[str, Any]], dict[str, str]]) -> None:
    _webhook_builders[purpose] = builder


def webhook_enqueue(*, url: str, payload: dict[str, Any], purpose: str, user: Any = None) -> OutboxMessage:
    """Queues a form-encoded POST to `url`; the registered builder for `purpose` turns the
    (encrypted at rest) payload into the form fields when it is sent."""
    if purpose not in _webhook_builders:
        raise ValueError(f"no webhook builder registered for {purpose!r}")
    with transaction.atomic():
        message = OutboxMessage.objects.create(
            channel=OutboxMessage.Channel.WEBHOOK,
            purpose=purpose,
            user=user if getattr(user, "pk", None) else None,
            recipient=url[:254],
            body_encrypted=encrypt(json.dumps(payload)),
        )
        _dispatch_on_commit(str(message.id))
    return message


def _send_webhook(message: OutboxMessage) -> str:
    import requests

    builder = _webhook_builders.get(message.purpose)
    if builder is None:
        raise DeliveryError(f"no webhook builder registered for {message.purpose!r}")
    fields = builder(json.loads(decrypt(message.body_encrypted)))
    try:
        response = requests.post(
            message.recipient,
            data=fields,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            headers={"Cache-Control": "no-store"},
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"webhook: {exc.__class__.__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"webhook: HTTP {response.status_code}")
    return ""


def _send(message: OutboxMessage) -> str:
    if message.channel == OutboxMessage.Channel.EMAIL:
        return _send_email(message)
    if message.channel == OutboxMessage.Channel.WEBHOOK:
        return _send_webhook(message)
    return _send_sms(message)


def _send_email(message: OutboxMessage) -> str:
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=decrypt(message.body_encrypted),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient],
        headers={"X-Outbox-Id": str(message.id)},
    )
    if message.html_encrypted:
        email.attach_alternative(decrypt(message.html_encrypted), "text/html")
    email.send(fail_silently=False)
    return ""


def _send_sms(message: OutboxMessage) -> str:
    from twilio.base.exceptions import TwilioException
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER):
        raise DeliveryError("SMS is not configured (TWILIO_* settings)")
    client = Client(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        http_client=TwilioHttpClient(timeout=settings.TWILIO_TIMEOUT_SECONDS),
    )
    try:
        sent = client.messages.create(
            to=message.recipient, from_=settings.TWILIO_FROM_NUMBER, body=decrypt(message.body_encrypted)
        )
    except TwilioException as exc:
        raise DeliveryError(f"Twilio: {exc.__class__.__name__}: {str(exc)[:200]}") from exc
    return str(getattr(sent, "sid", "") or "")


def outbox_deliver(*, message_id: str) -> str | None:
    """Sends one pending message. Locks the row so two workers never send it twice.

    On failure the row stays pending with its error and a backed-off next attempt, and
    DeliveryError is raised so the task can retry; after OUTBOX_MAX_ATTEMPTS it is failed.
    """
    failure: str | None = None
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(id=message_id, status=OutboxMessage.Status.PENDING)
            .first()
        )
        if message is None:
            return None
        message.attempts += 1
        try:
            provider_id = _send(message)
        except Exception as exc:
            message.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
            if message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                message.status = OutboxMessage.Status.FAILED
                message.body_encrypted = ""
                message.html_encrypted = ""
            else:
                delay = settings.OUTBOX_BACKOFF_SECONDS * (2 ** (message.attempts - 1))
                message.next_attempt_at = timezone.now() + timedelta(seconds=delay)
                failure = message.last_error
            message.save()
            logger.warning("outbox message %s not delivered: %s", message.id, message.last_error)
        else:
            message.status = OutboxMessage.Status.SENT
            message.sent_at = timezone.now()
            message.provider_id = provider_id[:64]
            message.last_error = ""
            message.body_encrypted = ""
            message.html_encrypted = ""
            message.save()
    # Raised after the commit, so the attempt and its error are kept while the task retries.
    if failure is not None:
        raise DeliveryError(failure)
    return str(message.status)


def outbox_due_ids(*, limit: int = 200) -> list[str]:
    """Pending messages whose next attempt is due (and not just queued a moment ago)."""
    now = timezone.now()
    return [
        str(pk)
        for pk in OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    ]
