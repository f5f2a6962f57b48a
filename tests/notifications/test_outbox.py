from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.test import override_settings
from django.utils import timezone

from notifications.models import OutboxMessage
from notifications.services import email_enqueue
from notifications.tasks import outbox_resend_pending, outbox_send

SMTP_DOWN = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": 9}


def _queue(user):
    return email_enqueue(
        to=user.email,
        template="password_changed",
        context={"user": user, "when": timezone.now()},
        purpose="password_changed",
        user=user,
    )


def test_body_is_encrypted_at_rest_and_wiped_after_sending(user):
    message = _queue(user)
    assert "password" not in message.body_encrypted
    outbox_send.delay(str(message.id))
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT
    assert message.body_encrypted == "" and message.html_encrypted == ""
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Your password was changed"
    assert mail.outbox[0].alternatives[0][1] == "text/html"  # type: ignore[attr-defined]


def test_smtp_failure_leaves_the_message_pending_and_a_later_run_sends_it(user, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    message = _queue(user)
    with override_settings(**SMTP_DOWN):
        outbox_send.delay(str(message.id))
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING
    assert message.attempts == 1
    assert "ConnectionRefusedError" in message.last_error or "OSError" in message.last_error
    assert message.next_attempt_at > timezone.now()
    assert outbox_resend_pending() == 0  # not due yet: backoff
    time_machine.shift(timedelta(minutes=5))
    assert outbox_resend_pending() == 1
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT
    assert len(mail.outbox) == 1


@override_settings(OUTBOX_MAX_ATTEMPTS=2, **SMTP_DOWN)
def test_a_message_that_keeps_failing_is_marked_failed(user, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    message = _queue(user)
    outbox_send.delay(str(message.id))
    time_machine.shift(timedelta(hours=1))
    outbox_resend_pending()
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.FAILED
    assert message.attempts == 2
    assert message.body_encrypted == ""


def test_a_sent_message_is_never_sent_twice(user):
    message = _queue(user)
    outbox_send.delay(str(message.id))
    outbox_send.delay(str(message.id))
    outbox_resend_pending()
    assert len(mail.outbox) == 1
