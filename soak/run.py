"""`make soak`: a bounded soak of mixed traffic against a production-like stack on 127.0.0.1.

It reuses the bench's stack starter (bench/runner.py: gunicorn with config.settings.prod, a Celery
worker, PostgreSQL, Redis) with its own database, Redis db, ports and work directory, seeds
customers with bench/stack_tasks.py, then runs for SOAK_SECONDS (default 300) from SOAK_THREADS
client threads:

- API sessions: a login, bearer reads (/me, /accounts, /payments), a token refresh, a payment
  below the step-up threshold (201) and, now and then, one above it (202) confirmed with the
  emailed code, read from the soak's own SMTP sink (the message went through the outbox and Celery);
- web logins through the real login page (CSRF token, cookies);
- wrong passwords: a user mistyping once then logging in, and users locked out after five wrong
  passwords (solving the proof-of-work CAPTCHA when asked), whose next attempt with the right
  password is refused.

Every simulated user has its own client address (X-Forwarded-For behind one trusted proxy), as
behind a real load balancer, so per-IP lockouts and risk signals behave as in production.

At the end it checks invariants and writes docs/security/soak.md:
- audit rows per event type equal what the soak did (logins, failures, lockouts, tokens, payments,
  step-ups, codes sent);
- no outbox message lost: none failed, none still pending once the queue has drained;
- the ledger is consistent (every balance equals its entries, entries sum to zero);
- no 5xx answer at all.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOAK_WORK = ROOT / "soak" / ".work"

# The bench's stack starter, pointed at the soak's own resources (read by bench/runner.py at import).
os.environ.setdefault("BENCH_DB", "bp_soak_stack")
os.environ.setdefault("BENCH_REDIS_DB", os.environ.get("SOAK_REDIS_DB", "7"))
os.environ.setdefault("BENCH_PORT", os.environ.get("SOAK_PORT", "18090"))
os.environ.setdefault("BENCH_SMTP_PORT", os.environ.get("SOAK_BENCH_SMTP_PORT", "18027"))
os.environ.setdefault("BENCH_WORKERS", os.environ.get("SOAK_WORKERS", "2"))
os.environ.setdefault("BENCH_THREADS", "4")
os.environ.setdefault("BENCH_ACCESS_LOG", "0")
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench import runner, smtp_sink  # noqa: E402

runner.WORK = SOAK_WORK  # logs, keys and the pid file of the soak's stack live apart from the bench's

SECONDS = int(os.environ.get("SOAK_SECONDS", "300"))
THREADS = int(os.environ.get("SOAK_THREADS", "4"))
USERS = int(os.environ.get("SOAK_USERS", "400"))
SINK_PORT = int(os.environ.get("SOAK_SMTP_PORT", "18028"))
CODE_COOLDOWN_SECONDS = int(os.environ.get("MFA_CODE_RESEND_COOLDOWN_SECONDS", "30"))  # as the stack runs it
FACTOR_EVERY = 4  # every fourth customer has an email second factor (soak/stack_seed.py)
BASE = runner.BASE
PASSWORD = runner.PASSWORD
OUT = ROOT / "docs" / "security" / "soak.md"
CODE_RE = re.compile(r"\b(\d{6})\b")


def log(msg: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# --- an SMTP sink that keeps the messages (the step-up codes are read from it) --------------------


class MailSink:
    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[str, str]] = []  # (recipient, text body)
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the SMTP sink did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await smtp_sink.serve(reader, writer, self._store, "soak-sink")

    def _store(self, rcpt: list[str], raw: bytes) -> None:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",)) if hasattr(message, "get_body") else None
        text = part.get_content() if part is not None else ""  # type: ignore[union-attr]
        with self.lock:
            for to in rcpt:
                self.messages.append((to, str(text)))

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def wait_code(self, to: str, after: int, timeout: float = 60.0) -> str | None:
        """The 6-digit code of the first message to `to` received after index `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for recipient, text in self.messages[after:]:
                    if recipient == to and "code" in text.lower():
                        found = CODE_RE.search(text)
                        if found:
                            return found.group(1)
            time.sleep(0.2)
        return None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


# --- the client -------------------------------------------------------------------------------------


class Tally:
    """What the soak did, by action, and every answer by status."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.actions: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.server_errors: list[str] = []
        self.latencies: list[float] = []
        self.problems: list[str] = []

    def did(self, action: str, n: int = 1) -> None:
        with self.lock:
            self.actions[action] += n

    def answer(self, method: str, path: str, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[f"{status // 100}xx"] += 1
            self.latencies.append(seconds)
            if status >= 500:
                self.server_errors.append(f"{method} {path} -> {status}")

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)
            self.actions["problem: " + re.sub(r"[0-9]+", "N", text)[:60]] += 1


class Client:
    """One simulated person: their own address, cookies kept by hand (the stack's cookies are Secure
    and the soak speaks plain HTTP on loopback)."""

    def __init__(self, tally: Tally, ip: str) -> None:
        self.tally = tally
        self.ip = ip
        self.http = requests.Session()
        self.http.trust_env = False
        self.cookies: dict[str, str] = {}

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        token: str = "",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = {"X-Forwarded-For": self.ip, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Soak/1.0", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        response = self.http.request(
            method, BASE + path, json=json_body, data=form, headers=sent, allow_redirects=False, timeout=60
        )
        self.tally.answer(method, path, response.status_code, time.perf_counter() - started)
        for cookie in response.cookies:
            if cookie.value:
                self.cookies[cookie.name] = cookie.value
            else:
                self.cookies.pop(cookie.name, None)
        return response


def solve_captcha(challenge: dict[str, Any]) -> str:
    from altcha import v1 as altcha

    solution = altcha.solve_challenge(
        challenge["challenge"], challenge["salt"], challenge["algorithm"], challenge["maxnumber"]
    )
    assert solution is not None
    payload = {key: challenge[key] for key in ("algorithm", "challenge", "salt", "signature")}
    payload["number"] = solution.number
    return base64.b64encode(json.dumps(payload).encode()).decode()


class Soak:
    def __init__(self, users: list[tuple[str, str, str]], sink: MailSink) -> None:
        self.tally = Tally()
        self.sink = sink
        self.users = users
        # users kept for the wrong-password scripts (each used once), never for the regular traffic
        self.fresh = [i for i in range(len(users)) if self.is_victim(i)]
        random.Random(7).shuffle(self.fresh)  # noqa: S311 (a traffic mix, not a secret)
        self.fresh_lock = threading.Lock()
        self.ips = {i: self._ip(i) for i in range(len(users))}
        self.locked: set[int] = set()
        # users wait out the code resend cooldown (MFA_CODE_RESEND_COOLDOWN_SECONDS, 30 s) after a code was sent
        self.busy_until: dict[int, float] = {}

    @staticmethod
    def is_victim(i: int) -> bool:
        return i % FACTOR_EVERY == FACTOR_EVERY - 1

    @staticmethod
    def has_factor(i: int) -> bool:
        return i % FACTOR_EVERY == 0  # soak/stack_seed.py gives these an email factor

    @staticmethod
    def _ip(i: int) -> str:
        nets = ["203.0.113", "198.51.100", "192.0.2"]
        return f"{nets[i // 250 % 3]}.{i % 250 + 1}"

    def code_sent_to(self, i: int) -> None:
        """A customer just got a code: the next one may only be asked for after the resend cooldown. Customers
        without a factor get emailed codes too (a risky login, a payment the PSD2 rules challenge), and asking
        sooner is refused with 429 by design, which the script would otherwise report as unexpected."""
        with self.fresh_lock:
            until = time.monotonic() + CODE_COOLDOWN_SECONDS + 5
            self.busy_until[i] = max(self.busy_until.get(i, 0), until)

    def take_fresh(self) -> int | None:
        with self.fresh_lock:
            return self.fresh.pop() if self.fresh else None

    # API login, answering a CAPTCHA challenge once when asked
    def api_login(self, c: Client, i: int, password: str) -> requests.Response:
        email_addr = self.users[i][0]
        body: dict[str, Any] = {"email": email_addr, "password": password, "device_id": f"soak-device-{i}"}
        response = c.call("POST", "/api/v1/auth/login", json_body=body)
        if response.status_code == 429 and response.json().get("code") == "captcha_required":
            body["captcha"] = solve_captcha(response.json()["captcha"])
            self.tally.did("captcha_solved")
            response = c.call("POST", "/api/v1/auth/login", json_body=body)
        return response

    def api_session(self, i: int, n: int) -> None:
        t = self.tally
        c = Client(t, self.ips[i])
        mark = self.sink.count()
        response = self.api_login(c, i, PASSWORD)
        body = response.json() if response.status_code == 200 else {}
        if body.get("mfa_required"):
            body = self.api_second_factor(c, i, body["mfa_token"], mark)
        if "access" not in body:
            t.problem(f"API login of a good user answered {response.status_code} {response.text[:200]}")
            return
        t.did("login_ok")
        t.did("token_issued")
        tokens = body
        for path in ("/api/v1/me", "/api/v1/accounts", "/api/v1/payments?limit=10"):
            if c.call("GET", path, token=tokens["access"]).status_code == 200:
                t.did("bearer_read")
        refreshed = c.call("POST", "/api/v1/auth/token/refresh", json_body={"refresh": tokens["refresh"]})
        if refreshed.status_code == 200:
            t.did("token_refreshed")
            tokens = refreshed.json()
        else:
            t.problem(f"refresh answered {refreshed.status_code} {refreshed.text[:200]}")
        _email_addr, account_id, _iban = self.users[i]
        payee = self.users[(i + 1) % len(self.users)][2]
        big = self.has_factor(i) and n % 2 == 0  # above the step-up threshold: confirmed with the emailed code
        cents = random.randint(100, 500000)  # noqa: S311 (a traffic mix, not a secret)
        amount = "10000.01" if big else f"{cents // 100}.{cents % 100:02d}"
        pay = c.call(
            "POST",
            "/api/v1/payments",
            json_body={
                "from_account": account_id,
                "to_iban": payee,
                "payee_name": "Soak Payee",
                "amount": amount,
                "currency": "EUR",
                "reference": f"soak {i}-{n}",
            },
            token=tokens["access"],
            headers={"Idempotency-Key": f"soak-{i}-{n}-{time.time_ns()}"},
        )
        if pay.status_code == 403 and pay.json().get("code") == "second_factor_required":
            # "unusual" (over 5x the typical amount) for a customer with no second factor: refused, as designed
            t.did("payment_refused")
        elif pay.status_code == 201:  # (a small one can still be "unusual" and answer 202)
            t.did("payment_created")
            t.did("payment_completed")
        elif pay.status_code == 202:
            t.did("payment_created")
            t.did("step_up_issued")
            self.step_up(c, i, pay.json()["id"], tokens["access"])
        else:
            t.problem(f"payment answered {pay.status_code} {pay.text[:200]}")

    def api_second_factor(self, c: Client, i: int, mfa_token: str, mark: int) -> dict[str, Any]:
        t = self.tally
        sent = c.call(
            "POST",
            "/api/v1/auth/mfa/challenge",
            json_body={"mfa_token": mfa_token, "method": "email", "device_id": f"soak-device-{i}"},
        )
        if sent.status_code != 202:
            t.problem(f"login code request answered {sent.status_code} {sent.text[:200]}")
            return {}
        t.did("code_sent")
        self.code_sent_to(i)
        code = self.sink.wait_code(self.users[i][0], mark)
        if code is None:
            t.problem("no login code email arrived within 60 s")
            return {}
        done = c.call(
            "POST",
            "/api/v1/auth/mfa/verify",
            json_body={"mfa_token": mfa_token, "code": code, "method": "email", "device_id": f"soak-device-{i}"},
        )
        if done.status_code != 200:
            t.problem(f"login code answered {done.status_code} {done.text[:200]}")
            return {}
        t.did("mfa_verified")
        t.did("login_second_factor")
        return dict(done.json())

    def step_up(self, c: Client, i: int, payment_id: str, access: str) -> None:
        t = self.tally
        mark = self.sink.count()
        sent = c.call(
            "POST", f"/api/v1/payments/{payment_id}/step-up/challenge", json_body={"method": "email"}, token=access
        )
        if sent.status_code != 202:
            t.problem(f"step-up challenge answered {sent.status_code} {sent.text[:200]}")
            return
        t.did("code_sent")
        t.did("step_up_issued")  # the service audits the step-up again when it sends the code for it
        self.code_sent_to(i)
        code = self.sink.wait_code(self.users[i][0], mark)
        if code is None:
            t.problem("no step-up code email arrived within 60 s")
            return
        done = c.call(
            "POST", f"/api/v1/payments/{payment_id}/confirm", json_body={"method": "email", "code": code}, token=access
        )
        if done.status_code == 200 and done.json().get("status") == "completed":
            t.did("step_up_passed")
            t.did("mfa_verified")
            t.did("payment_completed")
        else:
            t.problem(f"confirm answered {done.status_code} {done.text[:200]}")

    def web_login(self, i: int) -> None:
        t = self.tally
        c = Client(t, self.ips[i])
        page = c.call("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if page.status_code != 200 or token is None:
            t.problem(f"login page answered {page.status_code}")
            return
        response = c.call(
            "POST",
            "/accounts/login/",
            form={"csrfmiddlewaretoken": token.group(1), "email": self.users[i][0], "password": PASSWORD},
        )
        if response.status_code == 302 and "/accounts/login" not in response.headers.get("Location", ""):
            t.did("login_ok")
            t.did("web_login_ok")
            if c.call("GET", "/").status_code == 200:
                t.did("web_page_read")
        else:
            t.problem(f"web login answered {response.status_code} {response.headers.get('Location', '')}")

    def mistype_then_login(self, i: int) -> None:
        t = self.tally
        c = Client(t, self.ips[i])
        wrong = self.api_login(c, i, PASSWORD + "-typo")
        if wrong.status_code == 401:
            t.did("login_failed")
        else:
            t.problem(f"wrong password answered {wrong.status_code} {wrong.text[:200]}")
        ok = self.api_login(c, i, PASSWORD)
        if ok.status_code == 200:
            t.did("login_ok")
            t.did("token_issued")
        else:
            t.problem(f"login after a typo answered {ok.status_code} {ok.text[:200]}")

    def lock_out(self, i: int) -> None:
        t = self.tally
        c = Client(t, self.ips[i])
        for attempt in range(1, 6):
            response = self.api_login(c, i, f"wrong-{attempt}")
            code = response.json().get("code")
            if attempt < 5 and response.status_code == 401:
                t.did("login_failed")
            elif attempt == 5 and response.status_code == 429 and code == "locked":
                t.did("login_failed")
                t.did("lockout")
            else:
                t.problem(f"wrong password #{attempt} answered {response.status_code} {code}")
        refused = self.api_login(c, i, PASSWORD)  # the right password, but locked
        if refused.status_code == 429 and refused.json().get("code") == "locked":
            t.did("login_failed")
            t.did("locked_refused")
        else:
            t.problem(f"right password while locked answered {refused.status_code}")
        with self.fresh_lock:
            self.locked.add(i)

    def worker(self, w: int, deadline: float) -> None:
        rng = random.Random(w)  # noqa: S311 (a traffic mix, not a secret)
        mine = [i for i in range(len(self.users)) if (i // FACTOR_EVERY) % THREADS == w and not self.is_victim(i)]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            roll = rng.random()
            try:
                if roll < 0.06:
                    victim = self.take_fresh()
                    if victim is not None:
                        self.lock_out(victim)
                        continue
                if roll < 0.15:
                    victim = self.take_fresh()
                    if victim is not None:
                        self.mistype_then_login(victim)
                        continue
                now = time.monotonic()
                with self.fresh_lock:
                    candidates = [i for i in mine if i not in self.locked and self.busy_until.get(i, 0) < now]
                    if not candidates:
                        continue
                    i = rng.choice(candidates)
                    if self.has_factor(i):  # a login code and maybe a step-up code: 2 x 30 s cooldown + margin
                        self.busy_until[i] = now + 75
                if roll < 0.35 and not self.has_factor(i):
                    self.web_login(i)
                else:
                    self.api_session(i, n)
            except requests.RequestException as exc:
                self.tally.problem(f"transport error: {exc.__class__.__name__}: {str(exc)[:200]}")

    def run(self, seconds: int) -> float:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        pool = [threading.Thread(target=self.worker, args=(w, deadline)) for w in range(THREADS)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return time.monotonic() - started


# --- the invariants ----------------------------------------------------------------------------------

EXPECTED_AUDIT = {
    # audit event type: the soak's own count of the actions that must each leave exactly one row
    "auth.login_succeeded": "login_ok",
    "auth.login_failed": "login_failed",
    "auth.lockout": "lockout",
    "token.issued": "token_issued",
    "token.refreshed": "token_refreshed",
    "payment.created": "payment_created",
    "payment.completed": "payment_completed",
    "payment.step_up_issued": "step_up_issued",
    "payment.step_up_passed": "step_up_passed",
    "mfa.code_sent": "code_sent",
    "mfa.verified": "mfa_verified",
    "payment.refused": "payment_refused",
}


def db_counts() -> dict[str, Any]:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{runner.DB_NAME}", autocommit=True) as conn:
        audit: dict[str, int] = dict(
            conn.execute("SELECT type, count(*) FROM audit_auditevent GROUP BY type").fetchall()
        )
        outbox: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM notifications_outboxmessage GROUP BY status").fetchall()
        )
    return {
        "audit": {str(k): int(v) for k, v in audit.items()},
        "outbox": {str(k): int(v) for k, v in outbox.items()},
    }


def main() -> int:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally block tears the stack down
    SOAK_WORK.mkdir(parents=True, exist_ok=True)
    stack = runner.Stack()
    stack.pidfile = SOAK_WORK / "pids"
    sink = MailSink(SINK_PORT)
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "seconds": SECONDS,
        "threads": THREADS,
        "users": USERS,
        "machine": runner.machine_info(),
    }
    ok = False
    try:
        sink.start()
        stack.pidfile.unlink(missing_ok=True)
        stack.prepare_env()
        stack.env.update(
            {
                "EMAIL_URL": f"smtp://127.0.0.1:{SINK_PORT}",
                # One trusted proxy: each simulated person has its own address in X-Forwarded-For.
                "TRUSTED_PROXY_COUNT": "1",
                "SECURE_SSL_REDIRECT": "false",
                # Configuration, not a weakening of a check: seeded accounts pay many times in a few
                # minutes, which the default 50,000 EUR daily limit would refuse (the limit is tested
                # in tests/payments).
                "PAYMENT_DAILY_LIMIT": "1000000000.00",
            }
        )
        log(f"fresh database {runner.DB_NAME}, Redis db {runner.REDIS_DB}")
        stack.fresh_database()
        log("migrate + collectstatic")
        stack.run([runner.PY, "manage.py", "migrate", "--noinput"], timeout=900)
        stack.run([runner.PY, "manage.py", "collectstatic", "--noinput"], timeout=300)
        log("starting gunicorn, Celery worker (bench stack starter)")
        stack.start_all()
        log(f"seeding {USERS} customers")
        users_file = SOAK_WORK / "users.tsv"
        out = stack.run(
            [
                runner.PY,
                str(runner.BENCH / "stack_tasks.py"),
                "seed",
                str(users_file),
                "--users",
                str(USERS),
                "--password",
                PASSWORD,
                "--prefix",
                "soak",
            ],
            timeout=900,
        )
        report["seed"] = json.loads(out.strip().splitlines()[-1])
        out = stack.run([runner.PY, str(ROOT / "soak" / "stack_seed.py"), "factors", str(users_file)], timeout=300)
        report["seed"].update(json.loads(out.strip().splitlines()[-1]))
        users = [tuple(line.split("\t")) for line in users_file.read_text().splitlines()]
        before = db_counts()
        soak = Soak(users, sink)  # type: ignore[arg-type]
        log(f"soaking for {SECONDS} s with {THREADS} threads")
        elapsed = soak.run(SECONDS)
        log("draining the outbox (Celery) for up to 90 s")
        deadline = time.monotonic() + 90
        after = db_counts()
        while time.monotonic() < deadline and after["outbox"].get("pending", 0):
            time.sleep(2)
            after = db_counts()
        resent = 0
        if after["outbox"].get("pending", 0):
            # What the beat task does every minute in production (the soak's stack runs no beat): send
            # what a failed attempt left pending, once its backoff is due.
            log("pending messages left: running the beat task's outbox_resend_pending until they are sent")
            out = stack.run([runner.PY, str(ROOT / "soak" / "stack_seed.py"), "resend"], timeout=300)
            resent = int(json.loads(out.strip().splitlines()[-1])["resent"])
            after = db_counts()
        ledger = json.loads(
            stack.run([runner.PY, str(runner.BENCH / "stack_tasks.py"), "ledger"], timeout=300).strip().splitlines()[-1]
        )
        t = soak.tally
        audit_rows = []
        for event_type, action in EXPECTED_AUDIT.items():
            got = after["audit"].get(event_type, 0) - before["audit"].get(event_type, 0)
            audit_rows.append((event_type, t.actions[action], got))
        checks = {
            "audit events equal the actions performed": all(want == got for _, want, got in audit_rows),
            "no outbox message failed": after["outbox"].get("failed", 0) == 0,
            "no outbox message left pending": after["outbox"].get("pending", 0) == 0,
            "ledger consistent": bool(ledger["consistent"]),
            "no 5xx answer": not t.server_errors,
            "no unexpected answer to the script": not t.problems,
        }
        ok = all(checks.values())
        latencies = sorted(t.latencies)

        def pct(p: float) -> float:
            return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0.0

        report.update(
            {
                "elapsed_s": round(elapsed, 1),
                "requests": len(latencies),
                "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0,
                "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": pct(1.0)},
                "statuses": dict(t.statuses),
                "actions": dict(t.actions),
                "audit": audit_rows,
                "outbox": after["outbox"],
                "emails_received": sink.count(),
                "resent_by_beat_task": resent,
                "ledger": ledger,
                "server_errors": t.server_errors[:20],
                "problems": t.problems[:20],
                "checks": checks,
                "passed": ok,
            }
        )
    finally:
        log("tearing the stack down")
        stack.stop()
        sink.stop()
    report["finished_at"] = datetime.now(UTC).isoformat()
    (SOAK_WORK / "last.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_markdown(report)
    log(f"{'PASSED' if ok else 'FAILED'}: see {OUT.relative_to(ROOT)}")
    return 0 if ok else 1


def write_markdown(r: dict[str, Any]) -> None:
    m = r.get("machine", {})
    lines = [
        "# Soak results (`make soak`)",
        "",
        "Written by `soak/run.py` at the end of each run (the newest run replaces this file). Mixed traffic from",
        "simulated people (each with its own address behind one trusted proxy) against the production-like",
        "stack of bench/ on 127.0.0.1: gunicorn with `config.settings.prod`, a Celery worker, PostgreSQL, Redis,",
        "and an SMTP sink that the step-up codes are read from.",
        "",
        f"- Run: {r.get('started_at', '')} to {r.get('finished_at', '')}, {r.get('seconds')} s of traffic from "
        f"{r.get('threads')} client threads, {r.get('users')} seeded customers",
        f"- Machine: {m.get('nproc', '?')} x {m.get('cpu_model', '?')}, load before {' '.join(m.get('loadavg', []))}"
        " (shared with other jobs: the rates are not a benchmark)",
        f"- Requests: {r.get('requests', 0)} ({r.get('requests_per_s', 0)}/s), statuses {r.get('statuses', {})}",
        f"- Latency (ms): {r.get('latency_ms', {})}",
        f"- Result: **{'PASSED' if r.get('passed') else 'FAILED'}**",
        "",
        "## Invariants",
        "",
        "| Check | Result |",
        "|---|---|",
    ]
    for name, passed in (r.get("checks") or {}).items():
        lines.append(f"| {name} | {'yes' if passed else '**no**'} |")
    lines += [
        "",
        "## Audit rows against the actions performed",
        "",
        "| Event type | Soak did | Audit rows |",
        "|---|---:|---:|",
    ]
    for event_type, want, got in r.get("audit") or []:
        lines.append(f"| `{event_type}` | {want} | {got}{'' if want == got else ' **(differs)**'} |")
    lines += [
        "",
        "## What the soak did",
        "",
        "| Action | Count |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in sorted((r.get("actions") or {}).items())],
        "",
        f"Outbox at the end: {r.get('outbox', {})}; emails received by the sink: {r.get('emails_received', 0)}; "
        f"sent by the beat task's resend after the run: {r.get('resent_by_beat_task', 0)}.",
        f"Ledger: {r.get('ledger', {})}.",
        "",
    ]
    if r.get("server_errors"):
        lines += ["5xx answers (first 20):", "", *[f"- {e}" for e in r["server_errors"]], ""]
    if r.get("problems"):
        lines += ["Unexpected answers (first 20):", "", *[f"- {p}" for p in r["problems"]], ""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
