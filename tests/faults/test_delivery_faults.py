"""Message delivery under failure: the Celery broker down, Twilio answering 500 or never answering.

The outbox row is written in the same transaction as the code or alert, so losing the broker
or the SMS provider loses nothing: the row stays pending (with its error and a backed-off next
attempt) and the beat task `outbox_resend_pending` sends it once the service is back.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import responses
from django.conf import settings
from django.test import Client

from accounts import services as account_services
from accounts.models import User
from core import cached
from mfa import services as mfa_services
from mfa.models import EmailFactor, SMSFactor, TOTPFactor
from notifications.models import OutboxMessage
from notifications.services import outbox_due_ids
from notifications.tasks import outbox_resend_pending

pytestmark = [pytest.mark.slow]

TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def _twilio_ok() -> dict[str, Any]:
    return {
        "sid": "SM" + "2" * 32,
        "status": "queued",
        "to": "+447700900123",
        "from": settings.TWILIO_FROM_NUMBER,
        "body": "",
        "account_sid": settings.TWILIO_ACCOUNT_SID,
    }


@pytest.fixture
def celery_on_private_redis(private_redis: Any) -> Iterator[Any]:
    """The Celery app publishing to a private Redis (not eager), as in production."""
    from config.celery import app

    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "broker_transport_options")}

    def _reset_pools() -> None:
        from kombu import pools

        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
        # kombu keeps producer pools in a process-wide registry keyed by connection; a pool left
        # there would wrap the connection pool just closed ("Acquire on closed pool" later on).
        pools.reset()

    app.conf.task_always_eager = False
    app.conf.broker_url = f"redis://127.0.0.1:{private_redis.port}/1"
    app.conf.broker_transport_options = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1}
    _reset_pools()
    try:
        yield private_redis
    finally:
        for key, value in saved.items():
            setattr(app.conf, key, value)  # the way they were changed (update() can miss a namespaced key)
        _reset_pools()


def test_broker_down_while_codes_and_alerts_are_requested_keeps_them_pending_until_it_returns(
    celery_on_private_redis: Any,
    user: User,
    outbox: list[Any],
    django_capture_on_commit_callbacks: Any,
    twilio_ok: responses.RequestsMock,
) -> None:
    broker = celery_on_private_redis
    EmailFactor.objects.create(user=user, name="Email", email=user.email, confirmed=True)
    SMSFactor.objects.create(user=user, name="Phone", phone="+447700900123", confirmed=True)
    broker.stop()

    # The requests succeed for the user (the on-commit publish fails quietly: the broker is down).
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        mfa_services.code_send(user=user, method="email", purpose="login")
        mfa_services.code_send(user=user, method="sms", purpose="payment", binding="b1", summary="pay 10.00 EUR")
        account_services.password_reset_complete(user=user, new_password="a new long passphrase 42")
    # Three publishes (the caches' invalidations at commit, core.cached, aside).
    assert len([cb for cb in callbacks if getattr(cb, "func", None) is not cached.regenerate_after_commit]) == 3
    messages = list(OutboxMessage.objects.order_by("created_at"))
    assert [m.purpose.split(":")[0] for m in messages] == ["mfa_code", "mfa_code", "password_changed"]
    assert all(m.status == OutboxMessage.Status.PENDING and m.attempts == 0 for m in messages)
    assert outbox == [] and len(twilio_ok.calls) == 0  # nothing went out, nothing was lost

    broker.start()
    # Publishing works again (a task lands in the broker's queue) ...
    with django_capture_on_commit_callbacks(execute=True):
        account_services.password_reset_complete(user=user, new_password="another long passphrase 43")
    queued = redis.Redis(host="127.0.0.1", port=broker.port, db=1).llen("celery")
    assert queued == 1
    # ... and the beat task sends what the outage left pending (no worker needed in the test).
    assert outbox_resend_pending() == 4
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxMessage.Status.SENT}
    assert sorted(m.to[0] for m in outbox) == [user.email] * 3
    assert len(twilio_ok.calls) == 1


@pytest.fixture
def twilio_ok() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, TWILIO_URL, json=_twilio_ok(), status=201)
        yield mock


class SilentServer:
    """A TCP socket on loopback that accepts connections and never answers (a hung provider)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def _code(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match
    return match.group(1)


def test_twilio_500_then_timeout_retries_with_backoff_and_offers_another_factor(
    client: Client,
    user: User,
    login: Callable[..., Any],
    settings: Any,
    silent_server: SilentServer,
    monkeypatch: pytest.MonkeyPatch,
    time_machine: Any,
) -> None:
    settings.TWILIO_TIMEOUT_SECONDS = 1
    settings.OUTBOX_BACKOFF_SECONDS = 15
    time_machine.move_to(T0, tick=True)
    SMSFactor.objects.create(user=user, name="Phone", phone="+447700900123", confirmed=True)
    totp = TOTPFactor(user=user, name="App", confirmed=True)
    totp.set_key("3132333435363738393031323334353637383930")
    totp.save()
    assert login(client, user).status_code == 302
    assert client.post("/accounts/login/mfa/send/", {"method": "sms"}).status_code == 302
    [message] = OutboxMessage.objects.filter(channel="sms")

    # Attempt 1: Twilio answers 500.
    with responses.RequestsMock() as twilio:
        twilio.add(responses.POST, TWILIO_URL, json={"code": 20500, "message": "down", "status": 500}, status=500)
        assert outbox_resend_pending() == 0
        assert len(twilio.calls) == 1
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING and message.attempts == 1
    first_wait = message.next_attempt_at - T0
    assert timedelta(seconds=14) <= first_wait <= timedelta(seconds=20)
    assert str(message.id) not in outbox_due_ids()  # not retried before its backoff

    # Attempt 2: Twilio accepts the connection and never answers (through a hung proxy on loopback).
    time_machine.move_to(T0 + timedelta(seconds=16), tick=True)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{silent_server.port}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{silent_server.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert outbox_resend_pending() == 0
    assert silent_server.accepted, "the SMS request reached the silent server"
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING and message.attempts == 2
    assert "Timeout" in message.last_error or "timed out" in message.last_error.lower(), message.last_error
    second_wait = message.next_attempt_at - (T0 + timedelta(seconds=16))
    assert second_wait >= 2 * first_wait - timedelta(seconds=5)  # exponential backoff

    # The user waiting for the SMS is offered another factor.
    page = client.get("/accounts/login/mfa/?method=sms").content.decode()
    assert 'id="mfa-delayed"' in page and "?method=totp" in page

    # Twilio is back: the beat task sends it; the code still completes the login.
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("https_proxy")
    time_machine.move_to(T0 + timedelta(minutes=2), tick=True)
    with responses.RequestsMock() as twilio:
        twilio.add(responses.POST, TWILIO_URL, json=_twilio_ok(), status=201)
        assert outbox_resend_pending() == 1
        body = twilio.calls[0].request.body
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT and message.attempts == 3
    from urllib.parse import parse_qs

    code = _code(parse_qs(str(body))["Body"][0])
    assert client.post("/accounts/login/mfa/", {"method": "sms", "code": code}).status_code == 302
    assert client.get("/").status_code == 200


class _Retried(Exception):
    def __init__(self, countdown: int) -> None:
        super().__init__(countdown)
        self.countdown = countdown


@pytest.mark.parametrize("retries", [0, 1, 3, 12])
def test_the_worker_task_retries_a_failed_sms_with_exponential_backoff(
    user: User, settings: Any, monkeypatch: pytest.MonkeyPatch, retries: int
) -> None:
    """In a worker (not eager), a Twilio failure re-queues the task after 15 s x 2^retries (capped at 2^8)."""
    from notifications.services import sms_enqueue
    from notifications.tasks import outbox_send

    settings.OUTBOX_BACKOFF_SECONDS = 15
    message = sms_enqueue(to="+447700900123", body="Your code is 123456", purpose="mfa_code:login", user=user)

    def fake_retry(*, exc: Exception, countdown: int) -> Exception:
        return _Retried(countdown)

    monkeypatch.setattr(outbox_send, "retry", fake_retry)
    outbox_send.push_request(retries=retries, is_eager=False)
    try:
        with responses.RequestsMock() as twilio:
            twilio.add(responses.POST, TWILIO_URL, json={"code": 20500, "message": "down", "status": 500}, status=500)
            with pytest.raises(_Retried) as retried:
                outbox_send.run(str(message.id))
    finally:
        outbox_send.pop_request()
    assert retried.value.countdown == 15 * 2 ** min(retries, 8)
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.PENDING and message.attempts == 1 and "Twilio" in message.last_error
