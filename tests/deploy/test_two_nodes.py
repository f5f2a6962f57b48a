"""Two web nodes behave as one (issue 17, item 2).

Two real gunicorn servers (one worker each, the production WSGI entry point under the test
settings) run on two free loopback ports over the same PostgreSQL test database and the same
Redis database and key prefix as this test run, with the same JWT signing key, behind "a proxy"
(TRUSTED_PROXY_COUNT=1: each scenario brings its own client address in X-Forwarded-For, as the
edge proxy of the production profile sends it). The data the test creates is committed
(`transactional_db`), so the servers see it. Every scenario starts on one node and checks on the
other: nothing that matters may live in one process.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.models import User, UserSession
from audit.events import EventType
from audit.models import AuditEvent
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIREFOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
# Thresholds for the nodes: the per-IP login limit per hour (a window no test run straddles in
# practice), and the CAPTCHA out of the way so the lockout and the limit are seen alone.
LOGIN_LIMIT = 8
NODE_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.test",
    "TRUSTED_PROXY_COUNT": "1",
    "RATE_LIMIT_LOGIN_IP": f"{LOGIN_LIMIT}/h",
    "CAPTCHA_AFTER_FAILURES": "1000",
    "API_THROTTLE_LOGIN": "1000/min",
    "LOG_LEVEL": "WARNING",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _shared_env(tmp: Path) -> dict[str, str]:
    """What both nodes (and the outbox resenders) share with this test run."""
    from django.conf import settings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file = tmp / "jwt.pem"
    key_file.write_bytes(pem)
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(NODE_ENV)
    env.update(
        {
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.CACHES["default"]["LOCATION"],
            "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "JWT_PRIVATE_KEY_FILE": str(key_file),
        }
    )
    return env


class Node:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "--worker-class",
                "gthread",
                "--timeout",
                "60",
                "config.wsgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"node {self.name} not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def nodes(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[tuple[Node, Node]]:
    tmp = tmp_path_factory.mktemp("two-nodes")
    with django_db_blocker.unblock():
        env = _shared_env(tmp)
    a, b = Node("a", env, tmp / "a.log"), Node("b", env, tmp / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def shared_env(django_db_setup: None, tmp_path_factory: Any, django_db_blocker: Any) -> dict[str, str]:
    with django_db_blocker.unblock():
        return _shared_env(tmp_path_factory.mktemp("resend"))


class Browser:
    """A browser at one client address (X-Forwarded-For, as the edge proxy sends it)."""

    def __init__(self, ip: str) -> None:
        self.http = requests.Session()
        self.http.headers.update({"User-Agent": FIREFOX_UA, "X-Forwarded-For": ip})

    def _cookies_over_http(self) -> None:
        # The nodes set `Secure` cookies, as in production, but speak plain HTTP on loopback,
        # where the TLS proxy would be: the client sends them anyway, as the proxy would.
        for cookie in self.http.cookies:
            cookie.secure = False

    def get(self, node: Node, path: str) -> requests.Response:
        self._cookies_over_http()
        return self.http.get(node.url + path, allow_redirects=False, timeout=30)

    def post_form(
        self, node: Node, path: str, data: dict[str, str], *, form_page: str | None = None
    ) -> requests.Response:
        page = self.get(node, form_page or path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        self._cookies_over_http()
        return self.http.post(
            node.url + path, data={"csrfmiddlewaretoken": token.group(1), **data}, allow_redirects=False, timeout=30
        )

    def login(self, node: Node, email: str, password: str = DEFAULT_PASSWORD) -> requests.Response:
        return self.post_form(node, "/accounts/login/", {"email": email, "password": password})


class App:
    """The mobile app at one client address."""

    def __init__(self, ip: str) -> None:
        self.http = requests.Session()
        self.http.headers.update({"User-Agent": "BankApp/3.1 (iOS 17)", "X-Forwarded-For": ip})

    def post(self, node: Node, path: str, body: dict[str, Any], **headers: str) -> requests.Response:
        return self.http.post(node.url + path, json=body, headers=headers, timeout=30)

    def get(self, node: Node, path: str, access: str) -> requests.Response:
        return self.http.get(node.url + path, headers={"Authorization": f"Bearer {access}"}, timeout=30)

    def login(self, node: Node, email: str) -> dict[str, Any]:
        response = self.post(node, "/api/v1/auth/login", {"email": email, "password": DEFAULT_PASSWORD})
        assert response.status_code == 200 and "access" in response.json(), response.text[:500]
        return cast(dict[str, Any], response.json())


def _customer() -> User:
    return cast(User, UserFactory())


def _is_signed_in(response: requests.Response) -> bool:
    return response.status_code == 200 and 'action="/accounts/logout/"' in response.text


def test_a_web_session_made_on_one_node_is_valid_on_the_other_and_ends_on_both(
    nodes: tuple[Node, Node], transactional_db: None
) -> None:
    a, b = nodes
    user = _customer()
    laptop = Browser("198.51.100.11")
    signed_in = laptop.login(a, user.email)
    assert signed_in.status_code == 302 and not signed_in.headers["Location"].startswith("/accounts/login/")
    assert _is_signed_in(laptop.get(b, "/")) and _is_signed_in(laptop.get(a, "/"))

    # A new login on node B ends the older one (SESSION_CONCURRENT_LIMIT=1): node A refuses the
    # laptop's cookie on its very next request, with the reason.
    phone = Browser("198.51.100.12")
    assert phone.login(b, user.email).status_code == 302
    ended = laptop.get(a, "/")
    assert ended.status_code == 302 and ended.headers["Location"] == "/accounts/login/?reason=session_limit"
    assert laptop.get(b, "/").headers["Location"].startswith("/accounts/login/")

    # Sign-out on node A ends the phone's session on node B at once.
    assert _is_signed_in(phone.get(a, "/"))
    assert phone.post_form(a, "/accounts/logout/", {}, form_page="/").status_code == 302
    assert phone.get(b, "/").headers["Location"].startswith("/accounts/login/")
    assert not UserSession.objects.filter(user=user, ended_at__isnull=True).exists()
    assert AuditEvent.objects.filter(type=EventType.LOGOUT, user=user).count() == 1


def test_an_access_token_revoked_through_one_node_is_refused_by_the_other(
    nodes: tuple[Node, Node], transactional_db: None
) -> None:
    a, b = nodes
    user = _customer()
    app = App("198.51.100.21")
    tokens = app.login(a, user.email)
    assert app.get(a, "/api/v1/me", tokens["access"]).status_code == 200  # node A's check is warm
    assert app.get(b, "/api/v1/me", tokens["access"]).json()["email"] == user.email

    assert app.post(b, "/api/v1/auth/logout", {"refresh": tokens["refresh"]}).status_code == 204
    refused = app.get(a, "/api/v1/me", tokens["access"])
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    refresh = app.post(a, "/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]})
    assert refresh.status_code == 401


def test_lockout_and_per_ip_limit_count_attempts_made_on_both_nodes(
    nodes: tuple[Node, Node], transactional_db: None
) -> None:
    from django.conf import settings

    a, b = nodes
    user = _customer()
    attacker = Browser("198.51.100.31")
    limit = settings.AXES_FAILURE_LIMIT
    for attempt in range(limit):
        node = (a, b)[attempt % 2]
        response = attacker.login(node, user.email, "not-the-password-1")
        assert response.status_code in (200, 429), response.status_code
    # Locked after the 5th failure although no node saw more than 3: the right password is refused on both.
    for node in (a, b):
        locked = attacker.login(node, user.email)
        assert locked.status_code == 429 and "sign-in is paused" in locked.text
    assert AuditEvent.objects.filter(type=EventType.LOCKOUT, user=user).count() == 1
    assert not UserSession.objects.filter(user=user).exists()

    # Per-IP limit: LOGIN_LIMIT attempts from one address, alternating nodes, then refused on either.
    stuffer = Browser("198.51.100.32")
    for attempt in range(LOGIN_LIMIT):
        node = (a, b)[attempt % 2]
        response = stuffer.login(node, f"nobody{attempt}@example.com", "guess-password-123")
        assert response.status_code == 200 and "not correct" in response.text, (attempt, response.status_code)
    for node in (a, b):
        limited = stuffer.login(node, user.email)
        assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert AuditEvent.objects.filter(type=EventType.RATE_LIMITED, reason="login_ip", ip="198.51.100.32").count() == 2


def test_an_idempotent_payment_replayed_to_the_other_node_returns_the_first_answer(
    nodes: tuple[Node, Node], transactional_db: None
) -> None:
    from payments import services as payments
    from payments.models import Payment

    a, b = nodes
    user, payee = _customer(), _customer()
    source = payments.account_open(owner=user, currency="EUR", name="Current", opening_balance=Decimal("500.00"))
    target = payments.account_open(owner=payee, currency="EUR", opening_balance=Decimal("0.00"))
    app = App("198.51.100.41")
    access = app.login(a, user.email)["access"]
    body = {
        "from_account": str(source.id),
        "to_iban": target.iban,
        "payee_name": "Two Nodes",
        "amount": "12.34",
        "currency": "EUR",
        "reference": "replayed",
    }
    headers = {"Authorization": f"Bearer {access}", "Idempotency-Key": "two-nodes-1"}
    first = app.post(a, "/api/v1/payments", body, **headers)
    assert first.status_code == 201, first.text[:500]
    replay = app.post(b, "/api/v1/payments", body, **headers)
    assert replay.status_code == 201 and replay.json() == first.json()
    conflict = app.post(b, "/api/v1/payments", {**body, "amount": "99.00"}, **headers)
    assert conflict.status_code == 409
    assert Payment.objects.filter(from_account=source).count() == 1
    source.refresh_from_db()
    target.refresh_from_db()
    assert (source.balance, target.balance) == (Decimal("487.66"), Decimal("12.34"))
    assert AuditEvent.objects.filter(type=EventType.PAYMENT_CREATED, user=user).count() == 1


RESENDER = """
import json, os, sys, time
from pathlib import Path
import django
django.setup()
from django.conf import settings
settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
settings.EMAIL_FILE_PATH = sys.argv[1]
from notifications import tasks
barrier, me, other = Path(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = []

def due_then_wait(**kwargs):
    ids = real_due(**kwargs)
    seen.extend(ids)
    (barrier / me).touch()
    deadline = time.monotonic() + 30
    while not (barrier / other).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return ids

real_due = tasks.outbox_due_ids
tasks.outbox_due_ids = due_then_wait
sent = tasks.outbox_resend_pending()
print(json.dumps({"seen": seen, "sent": sent}))
"""


def test_one_outbox_message_is_sent_once_although_both_nodes_resend_it(
    shared_env: dict[str, str], transactional_db: None, tmp_path: Path
) -> None:
    from core.crypto import encrypt
    from notifications.models import OutboxMessage

    user = _customer()
    # What a lost broker message leaves behind: a pending, due row that only the resend will send.
    message = OutboxMessage.objects.create(
        channel=OutboxMessage.Channel.EMAIL,
        purpose="two_nodes",
        user=user,
        recipient=user.email,
        subject="Sent once",
        body_encrypted=encrypt("Hello from one of two nodes."),
    )
    mailbox, barrier = tmp_path / "mail", tmp_path / "barrier"
    mailbox.mkdir()
    barrier.mkdir()
    # Both resend tasks read the due messages, wait until the other has read them too, then deliver.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RESENDER, str(mailbox), str(barrier), me, other],
            cwd=ROOT,
            env=shared_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(str(message.id) in result["seen"] for result in results)  # both could send it
    delivered = [json.dumps(r) for r in results if r["sent"]]
    mails = [p.read_text() for p in mailbox.iterdir()]
    assert len(mails) == 1 and "Hello from one of two nodes." in mails[0], (delivered, mails)
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT and message.attempts == 1
    assert message.body_encrypted == ""
