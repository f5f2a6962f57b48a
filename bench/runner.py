"""The bench: a production-like stack on loopback, wrk scenarios, CPU per server core.

Run it through `make bench` (bench/run.sh), which also tears the stack down on any exit.
Everything it starts listens on 127.0.0.1 only, every wait is bounded in time, and the stack
lives in its own PostgreSQL database and Redis db (BENCH_DB, BENCH_REDIS_DB).

Settings (environment, with defaults):
    BENCH_DURATION=30      seconds each scenario is measured
    BENCH_WARMUP=3         seconds of unmeasured load before each scenario
    BENCH_CONNECTIONS=32   wrk connections (one wrk thread per connection)
    BENCH_SCENARIOS=web_login,api_login,refresh,reads,reads_8,payments,payments_external,client_credentials,auth_code,provider_reads
    BENCH_AUTH_CODES=      authorization codes minted for auth_code (default 1000 per measured or warm-up second)
    BENCH_WORKERS=nproc    WSGI server workers;  BENCH_THREADS=4  threads per worker
    BENCH_SERVERS=granian,gunicorn   the first serves every scenario, the others BENCH_SERVER_SCENARIOS after it
    BENCH_SERVER_SCENARIOS=reads,refresh,payments
    BENCH_BASELINE=20261201T100553Z.json   results printed beside each target as "previous"
    BENCH_PORT=18080  BENCH_SMTP_PORT=18025  BENCH_DB=bp_bench_stack  BENCH_REDIS_DB=8
    BENCH_USERS=400        seeded customers;  BENCH_ARGON2_N=200  verifications for the ceiling
    BENCH_ACCESS_LOG=1     gunicorn access log to bench/.work/access.log, as in the Dockerfile
    BENCH_PROFILE=         scenario names (comma-separated): py-spy records the gunicorn workers during them
    BENCH_PROFILE_MODE=gil gil: samples the thread holding the GIL (CPU); wall: every busy thread
    BENCH_PAYEE=internal   internal (own payee per connection) or external (through the clearing account)
    BENCH_CENSUS_REPEAT=50 repeatable census requests are timed this many times (mean CPU)
    BENCH_CENSUS=1         count SQL queries / Redis commands / CPU of one request per scenario
    BENCH_SCALE=0          1: then grow the database to bank size and measure again (bench/scale.py)
    BENCH_WORK=bench/.work where the run keeps its pids, keys, logs and wrk data (one per concurrent run)
    BENCH_PLAIN=1          1: the plain DRF + simplejwt app (bench/plain) before and after, same scripts and server
    BENCH_JWT=rs256        rs256 (as shipped) or hs512: the mobile tokens signed with a random JWT_SIGNING_KEY
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = Path(os.environ.get("BENCH_WORK") or BENCH / ".work").resolve()
RESULTS = BENCH / "results"
LUA = BENCH / "lua"
PY = str(ROOT / ".venv" / "bin" / "python")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-Correct-Horse-Battery-9"


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


DURATION = env_int("BENCH_DURATION", 30)
WARMUP = env_int("BENCH_WARMUP", 3)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 32)
WORKERS = env_int("BENCH_WORKERS", os.cpu_count() or 2)
THREADS = env_int("BENCH_THREADS", 4)
PORT = env_int("BENCH_PORT", 18080)
SMTP_PORT = env_int("BENCH_SMTP_PORT", 18025)
DB_NAME = os.environ.get("BENCH_DB") or "bp_bench_stack"
REDIS_DB = env_int("BENCH_REDIS_DB", 8)
USERS = env_int("BENCH_USERS", 400)
ARGON2_N = env_int("BENCH_ARGON2_N", 200)
ACCESS_LOG = os.environ.get("BENCH_ACCESS_LOG", "1") != "0"
PROFILE = os.environ.get("BENCH_PROFILE", "")
PROFILE_MODE = os.environ.get("BENCH_PROFILE_MODE", "gil")  # gil (CPU) or wall (includes I/O waits)
CENSUS = os.environ.get("BENCH_CENSUS", "1") != "0"
PLAIN = os.environ.get("BENCH_PLAIN", "1") != "0"  # bench/plain_app.py: the plain app, before and after
SCALE = os.environ.get("BENCH_SCALE", "0") == "1"  # bench/scale.py: cost as the data grows
# internal: each connection pays its own payee at the bank; external: every payment goes to
# another bank through the bank's clearing account (one row that every such payment locks).
PAYEE = os.environ.get("BENCH_PAYEE", "internal")
# The mobile API's token algorithm: rs256 (the default deployment) or hs512 (JWT_SIGNING_KEY, a random
# key per run; API.md allows both). The provider's tokens are RS256/ES256 either way.
JWT_MODE = os.environ.get("BENCH_JWT", "rs256").lower()
if JWT_MODE not in ("rs256", "hs512"):
    raise SystemExit(f"BENCH_JWT must be rs256 or hs512, not {JWT_MODE!r}")
EXTERNAL_IBAN = "DE89370400440532013000"
ALL_SCENARIOS = (
    "web_login,api_login,refresh,reads,reads_8,payments,payments_external,client_credentials,auth_code,provider_reads"
)
SCENARIOS = [s for s in (os.environ.get("BENCH_SCENARIOS") or ALL_SCENARIOS).split(",") if s and s != "none"]
# The WSGI servers compared in one run: the first (granian, as shipped in the Dockerfile) serves every
# scenario; each other one is started in its place afterwards (same database, Redis, Celery, port)
# for BENCH_SERVER_SCENARIOS.
SERVERS = [s for s in (os.environ.get("BENCH_SERVERS") or "granian,gunicorn").split(",") if s]
SERVER_SCENARIOS = [s for s in (os.environ.get("BENCH_SERVER_SCENARIOS") or "reads,refresh,payments").split(",") if s]
# The figures "before" beside each target (a results file; default: the last run before issue 15's work).
BASELINE = os.environ.get("BENCH_BASELINE") or "20261201T100553Z.json"
BASE = f"http://127.0.0.1:{PORT}"

# Per-IP limits raised for the bench (see Stack.prepare_env); any can be overridden from the environment.
RAISED_LIMITS = {
    "RATE_LIMIT_LOGIN_IP": "100000000/m",
    "API_THROTTLE_LOGIN": "1000000/s",
    "API_THROTTLE_MFA": "1000000/s",
    "API_THROTTLE_REFRESH": "1000000/s",
    "API_THROTTLE_LOGOUT": "1000000/s",
    "API_THROTTLE_USER": "1000000/s",
}

# Issue 15's targets, per server core.
TARGETS = {
    "api_login": "logins >= 85% of the concurrent argon2 ceiling",
    "web_login": "(no target; GET+POST)",
    "refresh": ">= 300/s per core",
    "reads": ">= 1500/s per core",
    "reads_8": ">= 1500/s per core, p99 <= 50 ms at 8 connections",
    "payments": ">= 250/s per core, ledger consistent",
    "payments_external": ">= 250/s per core (through the clearing account)",
    "client_credentials": ">= 300/s per core",
    "auth_code": ">= 300/s per core (code + PKCE -> access, refresh and ID token)",
    "provider_reads": "costs what `reads` /accounts costs (mobile token)",
}
PER_CORE_TARGETS = {
    "refresh": 300.0,
    "reads": 1500.0,
    "reads_8": 1500.0,
    "payments": 250.0,
    "payments_external": 250.0,
    "client_credentials": 300.0,
    "auth_code": 300.0,
}


def _shown(path: Path) -> str:
    """A path relative to the checkout when it is inside it (BENCH_WORK may be elsewhere)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def log(msg: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# --- /proc accounting ---------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime+cutime+cstime in seconds) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    parts = raw.rsplit(")", 1)[1].split()
    ppid = int(parts[1])
    ticks = int(parts[11]) + int(parts[12]) + int(parts[13]) + int(parts[14])
    return ppid, ticks / CLK_TCK


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its live descendants (children's reaped time included)."""
    stats = {pid: s for pid in all_pids() if (s := proc_stat(pid)) is not None}
    total, todo, seen = 0.0, [root], set()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def pids_cpu(pids: list[int]) -> dict[int, float]:
    return {pid: s[1] for pid in pids if (s := proc_stat(pid)) is not None}


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, total CPU seconds) from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


# --- wrk output ---------------------------------------------------------------------------


def parse_wrk(output: str) -> dict[str, Any]:
    """The JSON line that bench/lua/common.lua's done() prints."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line[len("BENCH_JSON ") :])
            return result
    raise ValueError("wrk printed no BENCH_JSON line")


@dataclass
class Outcomes:
    ok: int = 0
    refused: int = 0
    errors: int = 0
    by_key: dict[str, int] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)


def classify(counts: dict[str, int], expected: set[str], refusals: tuple[str, ...] = ("429",)) -> Outcomes:
    """Splits "<step>:<status>" counters into expected successes, deliberate refusals and errors.

    A status that is not the step's expected answer is an error even when it is 2xx/3xx (a web
    login that re-renders the form with 200 has failed).
    """
    out = Outcomes(by_key=dict(counts))
    for key, n in counts.items():
        status = key.rsplit(":", 1)[1]
        if key in expected:
            out.ok += n
        elif status in refusals:
            out.refused += n
        elif key.endswith(":no_token"):
            continue  # already counted as the GET's own status
        else:
            out.errors += n
            out.unexpected[key] = n
    return out


# --- the stack ----------------------------------------------------------------------------


class Stack:
    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.server = SERVERS[0]
        self.env = dict(os.environ)
        self.pidfile = WORK / "pids"

    # secrets and keys generated per run into bench/.work/ (gitignored)
    def prepare_env(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key_file = WORK / "jwt_private.pem"
        if not key_file.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_file.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            key_file.chmod(0o600)
        for var in (
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "REDIS_URL",
            "CELERY_TASK_ALWAYS_EAGER",
            "JWT_SIGNING_KEY",  # only BENCH_JWT=hs512 sets one
            "JWT_PREVIOUS_SIGNING_KEYS",
        ):
            self.env.pop(var, None)
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.prod",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
                "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
                "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
                "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
                "EMAIL_URL": f"smtp://127.0.0.1:{SMTP_PORT}",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "PUBLIC_BASE_URL": BASE,
                "SECURE_SSL_REDIRECT": "false",
                "JWT_PRIVATE_KEY_FILE": str(key_file),
                **({"JWT_SIGNING_KEY": secrets.token_urlsafe(64)} if JWT_MODE == "hs512" else {}),
                "WEBAUTHN_RP_ID": "localhost",
                "WEBAUTHN_ORIGIN": BASE,
                "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
                # The per-IP limits are configuration: all the load comes from one IP (127.0.0.1),
                # so they are raised for the bench, which measures the code path behind them
                # (the checks still run on every request). Per-account lockout stays on; the
                # scenarios use many distinct users instead. DRF's throttles keep a list of
                # timestamps per key for the whole period, so the raised API rates use a
                # one-second period: the list then holds one second of requests, not a minute.
                **{name: os.environ.get(name, value) for name, value in RAISED_LIMITS.items()},
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )

    def run(self, args: list[str], *, timeout: float, capture: bool = True) -> str:
        proc = subprocess.run(
            args, cwd=ROOT, env=self.env, capture_output=capture, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:4])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout or ""

    def fresh_database(self) -> None:
        import psycopg
        import redis

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (DB_NAME,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()

    def start(self, name: str, args: list[str]) -> None:
        out = open(WORK / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        with self.pidfile.open("a") as f:
            f.write(f"{proc.pid}\n")

    def server_command(self, server: str) -> list[str]:
        """The WSGI server's command line: the same workers and threads, keep-alive, backlog, access log."""
        if server == "granian":
            cmd = [
                str(ROOT / ".venv" / "bin" / "granian"),
                "--interface",
                "wsgi",
                "config.wsgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(PORT),
                "--workers",
                str(WORKERS),
                "--blocking-threads",
                str(THREADS),
                "--backlog",
                "2048",
                "--log-level",
                "warning",
                "--no-ws",
            ]
            if ACCESS_LOG:
                cmd += ["--access-log"]  # to its log file (bench/.work/app.log), as gunicorn's
            return cmd
        cmd = [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "gthread",
            "--threads",
            str(THREADS),
            "--keep-alive",
            "75",
            "--backlog",
            "2048",
            "--worker-tmp-dir",
            "/dev/shm",
            "--log-level",
            "warning",
        ]
        if ACCESS_LOG:
            cmd += ["--access-logfile", str(WORK / "access.log")]
        return cmd

    def start_all(self) -> None:
        self.start("smtp", [PY, str(BENCH / "smtp_sink.py"), str(SMTP_PORT), str(WORK / "smtp_count")])
        self.start("app", self.server_command(self.server))
        self.start(
            "celery",
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early; see {WORK / (name + '.log')}")
            try:
                with urllib.request.urlopen(BASE + "/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise RuntimeError("the stack did not answer /healthz within 90 s")

    def switch_server(self, server: str) -> None:
        """Stops the WSGI server and starts another on the same port (database, Redis, Celery stay)."""
        proc = self.procs.pop("app")
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.server = server
        self.start("app", self.server_command(server))
        self.wait_healthy()

    def gunicorn_pid(self) -> int:
        """The WSGI server's main process (gunicorn's master, or granian's)."""
        return self.procs["app"].pid

    def worker_pids(self) -> list[int]:
        master = self.gunicorn_pid()
        return [pid for pid in all_pids() if (s := proc_stat(pid)) is not None and s[0] == master]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        self.procs.clear()
        self.pidfile.unlink(missing_ok=True)


def db_backend_pids() -> list[int]:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (DB_NAME,)
        ).fetchall()
    return [int(r[0]) for r in rows]


# --- HTTP helpers used to prepare tokens ----------------------------------------------------


def http_json(
    method: str, path: str, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, dict[str, Any] | list[Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, {"raw": raw[:200].decode(errors="replace")}


def api_login(email: str) -> dict[str, Any]:
    status, body = http_json(
        "POST",
        "/api/v1/auth/login",
        {"email": email, "password": PASSWORD, "device_id": "bench-" + re.sub(r"[^A-Za-z0-9._:-]", "-", email)},
    )
    if status != 200 or not isinstance(body, dict) or "access" not in body:
        raise RuntimeError(f"API login of {email} answered {status}: {str(body)[:300]}")
    return body


def client_credentials_token(basic: str, scope: str) -> str:
    req = urllib.request.Request(
        BASE + "/o/token/",
        data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode(),
        method="POST",
    )
    req.add_header("Authorization", basic)
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(json.loads(resp.read())["access_token"])


def csrf_cookie_name() -> str:
    """The CSRF cookie's name as the login page sets it (prod prefixes it with __Host-)."""
    try:
        with urllib.request.urlopen(BASE + "/accounts/login/", timeout=30) as resp:
            cookies = resp.headers.get_all("Set-Cookie") or []
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        cookies = []
    for cookie in cookies:
        name = cookie.split("=", 1)[0].strip()
        if "csrftoken" in name:
            return name
    return "bp_csrftoken"


def endpoint_exists(method: str, path: str) -> bool:
    """True when the route is there (anything but 404/405 without a body)."""
    status, _ = http_json(method, path, {} if method == "POST" else None)
    return status != 404


# --- scenarios ----------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    script: str
    expected: set[str]
    unit: str  # what one "operation" is, for the ops/s column
    op_keys: set[str]  # counters that make an operation
    needs: list[tuple[str, str]] = field(default_factory=list)
    connections: int = CONNECTIONS


SCENARIO_DEFS = {
    "web_login": Scenario(
        "web_login", "web_login.lua", {"get:200", "post:302"}, "logins", {"post:302"}, [("GET", "/accounts/login/")]
    ),
    "api_login": Scenario(
        "api_login", "api_login.lua", {"login:200"}, "logins", {"login:200"}, [("POST", "/api/v1/auth/login")]
    ),
    "refresh": Scenario(
        "refresh",
        "refresh.lua",
        {"refresh:200"},
        "refreshes",
        {"refresh:200"},
        [("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/token/refresh")],
    ),
    "reads": Scenario(
        "reads",
        "reads.lua",
        {"me:200", "accounts:200"},
        "reads",
        {"me:200", "accounts:200"},
        [("POST", "/api/v1/auth/login"), ("GET", "/api/v1/me"), ("GET", "/api/v1/accounts")],
    ),
    "payments": Scenario(
        "payments",
        "payments.lua",
        {"create:201"},
        "payments",
        {"create:201"},
        [("POST", "/api/v1/auth/login"), ("GET", "/api/v1/accounts"), ("POST", "/api/v1/payments")],
    ),
}
# Same scripts, other data or connection counts: the latency target at 8 connections, payments to
# another bank (each credits the bank's clearing account), and the identity provider's tokens.
SCENARIO_DEFS["reads_8"] = Scenario(
    "reads_8",
    "reads.lua",
    {"me:200", "accounts:200"},
    "reads",
    {"me:200", "accounts:200"},
    SCENARIO_DEFS["reads"].needs,
    connections=8,
)
SCENARIO_DEFS["payments_external"] = Scenario(
    "payments_external", "payments.lua", {"create:201"}, "payments", {"create:201"}, SCENARIO_DEFS["payments"].needs
)
SCENARIO_DEFS["client_credentials"] = Scenario(
    "client_credentials", "client_credentials.lua", {"token:200"}, "tokens", {"token:200"}, [("POST", "/o/token/")]
)
SCENARIO_DEFS["auth_code"] = Scenario(
    "auth_code", "auth_code.lua", {"token:200"}, "exchanges", {"token:200"}, [("POST", "/o/token/")]
)
SCENARIO_DEFS["provider_reads"] = Scenario(
    "provider_reads", "provider_reads.lua", {"accounts:200"}, "reads", {"accounts:200"}, [("POST", "/o/token/")]
)


class Bench:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.users: list[tuple[str, str, str]] = []  # email, account id, iban
        self.results: dict[str, Any] = {}
        self.next_user = 0
        self.run_id = 0

    def take_users(self, n: int) -> list[tuple[str, str, str]]:
        if self.next_user + n > len(self.users):
            self.next_user = 0  # wrap: scenarios are sequential, reuse is harmless
        chunk = self.users[self.next_user : self.next_user + n]
        self.next_user += n
        return chunk

    def data_file(self, name: str, lines: list[str]) -> Path:
        path = WORK / f"{name}.data"
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def prepare(self, sc: Scenario) -> Path:
        c = sc.connections
        if sc.name in ("web_login", "api_login"):
            users = self.take_users(min(len(self.users), max(c * 4, 128)))
            lines = ["\t".join(u[0] for u in users[i::c]) for i in range(c)]
            return self.data_file(sc.name, lines)
        if sc.name == "refresh":
            users = self.take_users(c)
            return self.data_file(sc.name, [f"{u[0]}\t{api_login(u[0])['refresh']}" for u in users])
        if sc.name in ("reads", "reads_8"):
            users = self.take_users(c)
            return self.data_file(sc.name, [str(api_login(u[0])["access"]) for u in users])
        if sc.name in ("client_credentials", "provider_reads"):
            basic, scope = self.oauth_client()
            if sc.name == "client_credentials":
                return self.data_file(sc.name, [f"{basic}\t{scope}"] * c)
            return self.data_file(sc.name, [client_credentials_token(basic, "read:accounts") for _ in range(c)])
        if sc.name == "auth_code":
            return self.auth_code_data(sc)
        if sc.name in ("payments", "payments_external"):
            # Each connection pays its own payee (another seeded customer, an internal transfer):
            # the two account rows it locks are locked by no other connection, so the run measures
            # the code path rather than lock queues. (An external IBAN would credit the bank's one
            # clearing account: every payment would then queue on that row; see the README.)
            users = self.take_users(c)
            payees = self.take_users(c)
            lines = []
            for i, (email, _account, _iban) in enumerate(users):
                access = str(api_login(email)["access"])
                status, accounts = http_json("GET", "/api/v1/accounts", token=access)
                if status != 200 or not isinstance(accounts, list) or not accounts:
                    raise RuntimeError(f"GET /api/v1/accounts answered {status}: {str(accounts)[:300]}")
                external = PAYEE == "external" or sc.name == "payments_external"
                payee_iban = EXTERNAL_IBAN if external else payees[i][2]
                lines.append("\t".join([access, str(accounts[0]["id"]), payee_iban, "EUR", "1.00"]))
            return self.data_file(sc.name, lines)
        raise ValueError(sc.name)

    def oauth_client(self) -> tuple[str, str]:
        """A client-credentials client (created once per run): its Basic authorization and scopes."""
        if not getattr(self, "_oauth", None):
            out = self.stack.run(
                [PY, str(BENCH / "stack_tasks.py"), "oauth-client", "--owner-email", self.users[0][0]], timeout=120
            )
            made = json.loads(out.strip().splitlines()[-1])
            pair = f"{made['client_id']}:{made['client_secret']}".encode()
            self._oauth = ("Basic " + base64.b64encode(pair).decode(), str(made["scopes"]))
        return self._oauth

    def auth_code_data(self, sc: Scenario) -> Path:
        """Each connection exchanges codes of its own customer (one web login each): the first call
        hands out the warm-up's share of every customer's codes, the next one the rest, so that no
        code is presented twice (wrk stops with a request in flight whose code may be spent)."""
        c = sc.connections
        pool = getattr(self, "_auth_codes", None)
        if pool is not None and (pool["calls"] >= 2 or pool["used"] >= len(pool["codes"][0])):
            pool = None  # all handed out (the scenario runs again): a fresh set
        if pool is None:
            total = env_int("BENCH_AUTH_CODES", 1000 * (DURATION + WARMUP))
            per_user = max(4, -(-total // c))
            log(f"auth_code: minting {per_user * c} authorization codes for {c} customers")
            env = dict(self.stack.env)
            # The codes are minted before the scenario starts and must outlive the minting (a
            # deployment's codes live 60 s): this one process writes grants that expire in an hour.
            # The server checks each grant's stored expiry as always.
            self.stack.env["IDP_CODE_LIFETIME_SECONDS"] = "3600"
            try:
                out = self.stack.run(
                    [
                        *(PY, str(BENCH / "stack_tasks.py"), "auth-codes", str(WORK / "users.tsv")),
                        *("--out-dir", str(WORK / "auth_codes"), "--users", str(c), "--per-user", str(per_user)),
                        *("--password", PASSWORD),
                    ],
                    timeout=1800,
                )
            finally:
                self.stack.env = env
            made = json.loads(out.strip().splitlines()[-1])
            log(f"auth_code: {made['codes']} codes in {made['seconds']} s")
            pair = f"{made['client_id']}:{made['client_secret']}".encode()
            self._auth_codes = {
                "basic": "Basic " + base64.b64encode(pair).decode(),
                "redirect_uri": made["redirect_uri"],
                "codes": [Path(f).read_text().splitlines() for f in made["files"]],
                "used": 0,
                "calls": 0,
            }
            pool = self._auth_codes
        per_user = len(pool["codes"][0])
        if pool["calls"] == 0 and WARMUP > 0:
            share = -(-per_user * WARMUP // (WARMUP + DURATION))
        else:
            share = per_user - pool["used"]
        start, end = pool["used"], pool["used"] + share
        pool["used"], pool["calls"] = end, pool["calls"] + 1
        lines = []
        for i in range(c):
            path = WORK / f"auth_code.{pool['calls']}.{i:03d}.codes"
            path.write_text("".join(line + "\n" for line in pool["codes"][i % len(pool["codes"])][start:end]))
            lines.append(f"{pool['basic']}\t{pool['redirect_uri']}\t{path}")
        return self.data_file(sc.name, lines)

    def wrk(self, sc: Scenario, data: Path, seconds: int, state_out: Path | None) -> tuple[dict[str, Any], float]:
        self.run_id += 1
        env = dict(os.environ)
        env.update(
            {
                "BENCH_LUA_DIR": str(LUA),
                "BENCH_DATA": str(data),
                "BENCH_STATE_OUT": str(state_out or ""),
                "BENCH_RUN_ID": f"{int(time.time())}{self.run_id}",
                "BENCH_PASSWORD": PASSWORD,
                "BENCH_CSRF_COOKIE": csrf_cookie_name(),
            }
        )
        c = sc.connections
        args = ["wrk", "-t", str(c), "-c", str(c), "-d", f"{seconds}s", "--timeout", "10s"]
        args += ["-s", str(LUA / sc.script), BASE + "/"]
        out_path = WORK / f"{sc.name}.wrk.txt"
        with out_path.open("w") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + seconds + 60
            rusage = None
            while time.monotonic() < deadline:
                pid, _status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = 0
                    break
                time.sleep(0.1)
            else:
                proc.kill()
                proc.wait(timeout=10)
                raise RuntimeError(f"wrk ran past its time in {sc.name}")
        text = out_path.read_text()
        wrk_cpu = (rusage.ru_utime + rusage.ru_stime) if rusage else 0.0
        return parse_wrk(text), wrk_cpu

    def argon2_ceiling(self) -> dict[str, Any]:
        out = self.stack.run(
            [
                *(PY, str(BENCH / "stack_tasks.py"), "argon2", "--n", str(ARGON2_N)),
                *("--password", PASSWORD, "--threads", str(WORKERS * THREADS)),
            ],
            timeout=300,
        )
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def run_scenario(self, sc: Scenario) -> dict[str, Any]:
        missing = [f"{m} {p}" for m, p in sc.needs if not endpoint_exists(m, p)]
        if missing:
            log(f"{sc.name}: skipped, not there yet: {', '.join(missing)}")
            return {"skipped": f"endpoint missing: {', '.join(missing)}"}
        data = self.prepare(sc)
        ceiling = self.argon2_ceiling() if sc.name in ("api_login", "web_login") else None
        state = WORK / f"{sc.name}.state" if sc.name == "refresh" else None  # final chains, for inspection
        if WARMUP > 0:
            log(f"{sc.name}: warm-up {WARMUP}s")
            self.wrk(sc, data, WARMUP, None)
            if sc.name in ("refresh", "auth_code"):
                # auth_code: the measured run gets codes the warm-up never saw (see auth_code_data).
                # refresh: wrk stops with a refresh in flight on every connection: the server rotated that
                # token but the client never saw the answer, so presenting the last token it knows
                # would be reuse (theft) and revoke the family. Fresh logins for the measured run.
                data = self.prepare(sc)
        profiler = self.start_profiler(sc)
        workers = self.stack.worker_pids()
        gun0 = tree_cpu(self.stack.gunicorn_pid())
        celery = self.stack.procs.get("celery")  # (the plain reference app has none)
        cel0 = tree_cpu(celery.pid) if celery else 0.0
        db0 = pids_cpu(db_backend_pids())
        busy0, total0 = machine_busy()
        load0 = Path("/proc/loadavg").read_text().split()[:3]
        log(f"{sc.name}: measuring {DURATION}s at {sc.connections} connections")
        wall0 = time.monotonic()
        raw, wrk_cpu = self.wrk(sc, data, DURATION, state)
        wall = time.monotonic() - wall0
        gun1 = tree_cpu(self.stack.gunicorn_pid())
        cel1 = tree_cpu(celery.pid) if celery else 0.0
        db1 = pids_cpu(db_backend_pids())
        busy1, total1 = machine_busy()
        self.stop_profiler(profiler)
        if set(self.stack.worker_pids()) != set(workers):
            log(f"{sc.name}: a gunicorn worker was replaced during the run")

        duration = raw["duration_s"]
        outcomes = classify(raw["counts"], sc.expected)
        server_cpu = gun1 - gun0
        db_cpu = sum(v - db0.get(pid, 0.0) for pid, v in db1.items())
        ops = sum(n for k, n in raw["counts"].items() if k in sc.op_keys)
        errors = outcomes.errors + sum(raw["errors"][k] for k in ("connect", "read", "write", "timeout"))
        result: dict[str, Any] = {
            "connections": sc.connections,
            "duration_s": round(duration, 2),
            "requests": raw["requests"],
            "requests_per_s": round(raw["requests"] / duration, 1),
            "unit": sc.unit,
            "ops": ops,
            "ops_per_s": round(ops / duration, 1),
            "latency_ms": {k: round(v, 2) for k, v in raw["latency_ms"]["percentiles"].items()},
            "latency_mean_ms": round(raw["latency_ms"]["mean"], 2),
            "latency_max_ms": round(raw["latency_ms"]["max"], 2),
            "errors": errors,
            "refusals": outcomes.refused,
            "unexpected": outcomes.unexpected,
            "socket_errors": raw["errors"],
            "counts": raw["counts"],
            "server_cpu_s": round(server_cpu, 2),
            "server_cores_used": round(server_cpu / wall, 2),
            "requests_per_server_cpu_s": round(raw["requests"] / server_cpu, 1) if server_cpu else None,
            "ops_per_server_cpu_s": round(ops / server_cpu, 1) if server_cpu else None,
            "postgres_cpu_s": round(db_cpu, 2),
            "celery_cpu_s": round(cel1 - cel0, 2),
            "wrk_cpu_s": round(wrk_cpu, 2),
            "machine_busy_cores": round((busy1 - busy0) / wall, 2),
            "machine_cores": round((total1 - total0) / wall, 2),
            "loadavg_before": load0,
        }
        result["other_load_cores"] = round(
            max(0.0, result["machine_busy_cores"] - (server_cpu + db_cpu + (cel1 - cel0) + wrk_cpu) / wall), 2
        )
        if ceiling is not None:
            result["argon2"] = ceiling
            per_core = result["ops_per_server_cpu_s"] or 0.0
            result["fraction_of_argon2_ceiling"] = round(per_core / ceiling["verifies_per_cpu_s"], 3)
            if ceiling.get("concurrent_verifies_per_cpu_s"):
                result["fraction_of_concurrent_argon2"] = round(per_core / ceiling["concurrent_verifies_per_cpu_s"], 3)
        if profiler is not None:
            result["profile"] = "bench/results/profile-" + profiler[1].stem + ".txt"
        return result

    # py-spy, optional: BENCH_PROFILE=<scenario>
    def start_profiler(self, sc: Scenario) -> tuple[subprocess.Popen[bytes], Path] | None:
        if sc.name not in PROFILE.split(","):
            return None
        spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
        if not Path(spy).exists():
            log("BENCH_PROFILE set but py-spy is not installed (uv sync --group dev)")
            return None
        (WORK / "profiles").mkdir(exist_ok=True)
        out = WORK / "profiles" / f"{sc.name}-{PROFILE_MODE}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.raw"
        args = [spy, "record", "--pid", str(self.stack.gunicorn_pid()), "--subprocesses", "--format", "raw"]
        args += ["--duration", str(DURATION), "--rate", "200", "--output", str(out), "--nonblocking"]
        if PROFILE_MODE == "gil":
            args.append("--gil")  # only the thread holding the GIL: where the Python CPU goes
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return proc, out

    def stop_profiler(self, profiler: tuple[subprocess.Popen[bytes], Path] | None) -> None:
        if profiler is None:
            return
        try:
            profiler[0].wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler[0].kill()
            profiler[0].wait(timeout=5)
        raw = profiler[1]
        if raw.exists():
            summary = subprocess.run(
                [PY, str(BENCH / "profile_summary.py"), str(raw)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            ).stdout
            target = RESULTS / ("profile-" + raw.stem + ".txt")
            target.write_text(
                f"py-spy ({PROFILE_MODE}) of the gunicorn workers; raw stacks: {_shown(raw)}\n\n{summary}"
            )
            log(f"profile summary: {target.relative_to(ROOT)}")


# --- report -------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    mem_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def table(results: dict[str, Any]) -> str:
    head = (
        "| scenario | conns | req/s | ops/s | p50 ms | p95 ms | p99 ms | errors | refused | server CPU s "
        "| server cores | ops per server core-s | other load (cores) | target |"
    )
    lines = [head, "|" + "---|" * 14]
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"| {name} | | | | | | | | | | | | | skipped: {r['skipped']} |")
            continue
        if "failed" in r:
            lines.append(f"| {name} | | | | | | | | | | | | | failed: {r['failed'][:80]} |")
            continue
        per_core = fmt(r["ops_per_server_cpu_s"])
        if "fraction_of_argon2_ceiling" in r:
            per_core += (
                f" ({100 * r['fraction_of_argon2_ceiling']:.0f}% of argon2 {r['argon2']['verifies_per_cpu_s']:.1f}/s)"
            )
        lat = r["latency_ms"]
        lines.append(
            f"| {name} | {r['connections']} | {fmt(r['requests_per_s'])} | {fmt(r['ops_per_s'])} {r['unit']} "
            f"| {fmt(lat['50'])} | {fmt(lat['95'])} | {fmt(lat['99'])} | {r['errors']} | {r['refusals']} "
            f"| {fmt(r['server_cpu_s'], 2)} | {fmt(r['server_cores_used'], 2)} | {per_core} "
            f"| {fmt(r['other_load_cores'], 2)} | {TARGETS.get(name, '')} |"
        )
    return "\n".join(lines)


def _baseline() -> dict[str, Any]:
    path = RESULTS / BASELINE
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded


def targets_verdict(
    results: dict[str, Any], ledger: dict[str, Any] | None, previous: dict[str, Any] | None = None
) -> list[str]:
    """Issue 15's targets, each met or missed with the measured figure, beside the previous run's."""
    lines = []
    before = (previous or {}).get("scenarios", {})

    def usable(r: dict[str, Any] | None) -> bool:
        return bool(r) and "skipped" not in r and "failed" not in r  # type: ignore[operator]

    def per_core(name: str, source: dict[str, Any]) -> float | None:
        r = source.get(name) or {}
        return r.get("ops_per_server_cpu_s") if usable(r) else None

    def was(name: str, key: str = "ops_per_server_cpu_s", fmt_: str = "{:.0f}/s") -> str:
        r = before.get(name)
        if name == "reads_8" and not usable(r):
            r = before.get("reads")  # older runs measured reads at 32 connections only
        if not usable(r):
            return "previous: -"
        value = r.get(key) if key != "p99" else r["latency_ms"]["99"]
        return "previous: " + (fmt_.format(value) if value is not None else "-")

    def verdict(ok: bool, text: str) -> str:
        return ("met    " if ok else "MISSED ") + text

    api = results.get("api_login") or {}
    if usable(api) and api.get("fraction_of_concurrent_argon2") is not None:
        f = api["fraction_of_concurrent_argon2"]
        prev = (before.get("api_login") or {}).get("fraction_of_concurrent_argon2")
        prev_text = f"previous: {100 * prev:.0f}%" if prev is not None else "previous: -"
        lines.append(
            verdict(
                f >= 0.85,
                f"api login {api['ops_per_server_cpu_s']:.1f}/s per core = {100 * f:.0f}% of the concurrent argon2 "
                f"ceiling {api['argon2']['concurrent_verifies_per_cpu_s']:.1f}/s (target 85%; {prev_text})",
            )
        )
        cffi = api["argon2"].get("concurrent_verifies_per_cpu_s_argon2_cffi")
        if cffi:  # the ceiling is the portal's own verifier (libsodium); argon2-cffi's, for scale
            lines.append(
                f"       (the same hashes through argon2-cffi, Django's stock verifier: {cffi:.1f}/s per core; "
                f"the API login is {100 * api['ops_per_server_cpu_s'] / cffi:.0f}% of that)"
            )
    for name, target in PER_CORE_TARGETS.items():
        v = per_core(name, results)
        if v is None:
            continue
        text = f"{name} {v:.0f}/s per core (target {target:.0f}, {100 * v / target:.0f}%; {was(name)})"
        ok = v >= target
        if name == "reads_8":
            p99 = results[name]["latency_ms"]["99"]
            ok = ok and p99 <= 50
            prev_p99 = was(name, "p99", "{:.0f} ms")
            text += f", p99 {p99:.1f} ms at {results[name]['connections']} connections (target 50 ms; {prev_p99})"
        lines.append(verdict(ok, text))
    census = (previous or {}).get("_census_now") or {}
    by_token = census.get("accounts_provider_token") or {}
    if by_token.get("cpu_ms") and (census.get("accounts") or {}).get("cpu_ms"):
        p_cpu, m_cpu = by_token["cpu_ms"], census["accounts"]["cpu_ms"]
        lines.append(
            verdict(
                p_cpu <= 1.15 * m_cpu,
                f"GET /api/v1/accounts with a provider token {p_cpu:.2f} ms CPU, {by_token['sql_queries']} SQL vs a "
                f"mobile token {m_cpu:.2f} ms, {census['accounts']['sql_queries']} SQL (census; target: the same, "
                "within 15%)",
            )
        )
    provider, mobile = results.get("provider_reads") or {}, results.get("reads") or {}
    if usable(provider) and usable(mobile):
        # reads alternates /me and /accounts; provider_reads is /accounts only: compare CPU per request.
        p_ms = 1000 * provider["server_cpu_s"] / max(1, provider["requests"])
        m_ms = 1000 * mobile["server_cpu_s"] / max(1, mobile["requests"])
        lines.append(
            f"(info) provider-token reads (/accounts) {p_ms:.2f} ms server CPU per request under load; mobile-token "
            f"reads (/me and /accounts alternately) {m_ms:.2f} ms"
        )
    if ledger is not None:
        lines.append(verdict(bool(ledger.get("consistent")), "ledger consistent after the payments"))
    errors = {n: r["errors"] for n, r in results.items() if isinstance(r, dict) and "errors" in r}
    if errors:
        lines.append(verdict(not any(errors.values()), f"errors other than deliberate refusals: {errors}"))
    return lines


def servers_table(servers: dict[str, dict[str, Any]]) -> str:
    names = sorted({n for by in servers.values() for n in by})
    lines = ["| scenario | " + " | ".join(f"{s} ops per server core-s / p99 ms" for s in servers) + " |"]
    lines.append("|---|" + "---|" * len(servers))
    for name in names:
        cells = []
        for by in servers.values():
            r = by.get(name) or {}
            ok = r and "skipped" not in r and "failed" not in r
            cells.append(f"{fmt(r['ops_per_server_cpu_s'])} / {fmt(r['latency_ms']['99'])}" if ok else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plain_phase(phase: str) -> dict[str, Any]:
    """The plain DRF app's scenarios (bench/plain_app.py), in a process of its own; never fails the run."""
    import plain_app

    log(f"the plain DRF + simplejwt app ({phase} the portal's scenarios)")
    try:
        return plain_app.run_phase(phase)
    except Exception as exc:
        log(f"plain app {phase}: failed: {exc}")
        return {"phase": phase, "failed": str(exc)[:2000]}


def main() -> int:
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    if shutil.which("wrk") is None:
        log("wrk is not installed: apt-get install -y wrk")
        return 2
    stack = Stack()
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started_at": started.isoformat(),
        "machine": machine_info(),
        "config": {
            "duration_s": DURATION,
            "warmup_s": WARMUP,
            "connections": CONNECTIONS,
            "gunicorn": {"workers": WORKERS, "threads": THREADS, "worker_class": "gthread", "keep_alive_s": 75},
            "servers": SERVERS,
            "access_log": ACCESS_LOG,
            "payee": PAYEE,
            "jwt": JWT_MODE,
            "users": USERS,
            "settings": "config.settings.prod",
            "raised_limits": {name: os.environ.get(name, value) for name, value in RAISED_LIMITS.items()},
        },
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
        "scenarios": {},
    }
    try:
        if PLAIN:
            report["plain"] = {"before": plain_phase("before")}
        stack.pidfile.unlink(missing_ok=True)
        stack.prepare_env()
        log(f"fresh database {DB_NAME}, Redis db {REDIS_DB}")
        stack.fresh_database()
        log("migrate + collectstatic")
        stack.run([PY, "manage.py", "migrate", "--noinput"], timeout=600)
        stack.run([PY, "manage.py", "collectstatic", "--noinput"], timeout=300)
        log(f"starting {SERVERS[0]} ({WORKERS} workers x {THREADS} threads), Celery worker, SMTP sink")
        stack.start_all()
        bench = Bench(stack)
        log(f"seeding {USERS} customers")
        out = stack.run(
            [
                PY,
                str(BENCH / "stack_tasks.py"),
                "seed",
                str(WORK / "users.tsv"),
                "--users",
                str(USERS),
                "--password",
                PASSWORD,
            ],
            timeout=900,
        )
        report["seed"] = json.loads(out.strip().splitlines()[-1])
        bench.users = [tuple(line.split("\t")) for line in (WORK / "users.tsv").read_text().splitlines()]  # type: ignore[misc]
        if CENSUS:
            log("census: SQL queries, Redis commands and CPU of one request per scenario")
            try:
                out = stack.run(
                    [
                        *(PY, str(BENCH / "stack_tasks.py"), "census", str(WORK / "users.tsv")),
                        *("--password", PASSWORD, "--repeat", str(env_int("BENCH_CENSUS_REPEAT", 50))),
                    ],
                    timeout=300,
                )
                report["census"] = json.loads(out.strip().splitlines()[-1])
            except Exception as exc:
                log(f"census failed: {str(exc)[-1500:]}")
                report["census"] = {"failed": str(exc)[-2000:]}
        for name in SCENARIOS:
            sc = SCENARIO_DEFS[name]
            try:
                report["scenarios"][name] = bench.run_scenario(sc)
            except Exception as exc:  # one broken scenario must not hide the others
                log(f"{name}: failed: {exc}")
                report["scenarios"][name] = {"failed": str(exc)[:2000]}
        # The WSGI servers side by side: the others in the first one's place, same scenarios.
        report["servers"] = {SERVERS[0]: {n: report["scenarios"][n] for n in SERVER_SCENARIOS if n in SCENARIOS}}
        for server in SERVERS[1:]:
            log(f"switching the WSGI server to {server}")
            try:
                stack.switch_server(server)
            except Exception as exc:
                log(f"{server}: failed to start: {exc}")
                report["servers"][server] = {"failed": str(exc)[:2000]}
                continue
            report["servers"][server] = {}
            for name in SERVER_SCENARIOS:
                try:
                    report["servers"][server][name] = bench.run_scenario(SCENARIO_DEFS[name])
                except Exception as exc:
                    log(f"{server} {name}: failed: {exc}")
                    report["servers"][server][name] = {"failed": str(exc)[:2000]}
        if stack.server != SERVERS[0]:
            stack.switch_server(SERVERS[0])
        # OWASP's equivalent argon2id sets, each timed alone and with the server's threads at once.
        try:
            out = stack.run(
                [
                    *(PY, str(BENCH / "stack_tasks.py"), "argon2-params", "--threads", str(WORKERS * THREADS)),
                    *("--password", PASSWORD),
                ],
                timeout=600,
            )
            report["argon2_params"] = json.loads(out.strip().splitlines()[-1])
        except Exception as exc:
            log(f"argon2-params failed: {exc}")
        if any(n.startswith("payments") for n in SCENARIOS):
            out = stack.run([PY, str(BENCH / "stack_tasks.py"), "ledger"], timeout=300)
            report["ledger"] = json.loads(out.strip().splitlines()[-1])
        out = stack.run([PY, str(BENCH / "stack_tasks.py"), "outbox"], timeout=120)
        report["outbox"] = json.loads(out.strip().splitlines()[-1])
        if SCALE:
            import scale  # bench/scale.py

            try:
                report["scale"] = scale.run(stack, bench, report, SCENARIO_DEFS, log)
            except Exception as exc:
                log(f"scale: failed: {str(exc)[-1500:]}")
                report.setdefault("scale", {})["failed"] = str(exc)[-3000:]
    finally:
        log("tearing the stack down")
        stack.stop()
        count_file = WORK / "smtp_count"
        if count_file.exists():
            report["smtp_messages_received"] = int(count_file.read_text() or 0)
    plain_table = ""
    if PLAIN:
        import plain_app

        report["plain"]["after"] = plain_phase("after")
        plain_table, plain_verdicts = plain_app.comparison(report["scenarios"], report["plain"])
    previous = _baseline()
    report["baseline"] = BASELINE if previous else None
    report["targets"] = targets_verdict(
        report["scenarios"], report.get("ledger"), {**previous, "_census_now": report.get("census") or {}}
    )
    if PLAIN:
        report["targets"] += plain_verdicts
    report["finished_at"] = datetime.now(UTC).isoformat()
    path = RESULTS / f"{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    print(f"\nbank-portal bench {started:%Y-%m-%d %H:%M} UTC, git {report['git']}")
    print(f"machine: {m['nproc']} x {m['cpu_model']}, {m['ram_gib']} GiB RAM, load before {' '.join(m['loadavg'])}")
    print(
        f"{SERVERS[0]} {WORKERS} workers x {THREADS} threads, {DURATION}s per scenario after {WARMUP}s warm-up, "
        f"mobile tokens {JWT_MODE.upper()}\n"
    )
    print(table(report["scenarios"]))
    if plain_table:
        print("\nthe plain DRF + simplejwt app (bench/plain), same server, scripts and users, before and after:")
        print(plain_table)
    census = report.get("census") or {}
    if census and "failed" not in census:
        print(
            "\nper request (census, in process): "
            + "; ".join(
                f"{k} {v['status']}: {v['sql_queries']} SQL, {v.get('redis_round_trips', '?')} Redis round trips "
                f"({v['redis_commands']} commands), {v['cpu_ms']} ms CPU"
                if "status" in v
                else f"{k}: {v['cpu_ms']} ms CPU"
                for k, v in census.items()
            )
        )
    if "ledger" in report:
        verdict = "consistent" if report["ledger"]["consistent"] else "INCONSISTENT"
        print(f"\nledger after payments: {verdict} {report['ledger']}")
    servers = {k: v for k, v in (report.get("servers") or {}).items() if "failed" not in v}
    if len(servers) > 1:
        print("\nWSGI servers, same run (ops per server core-s / p99 ms):\n" + servers_table(servers))
    if report.get("argon2_params"):
        print(
            "\nargon2id, OWASP's equivalent sets (ms CPU alone; verifications per CPU-s with "
            f"{WORKERS * THREADS} threads at once; libsodium verifies the portal's hashes, argon2-cffi Django's):"
        )
        for r in report["argon2_params"]["sets"]:
            print(
                f"  m={r['memory_cost_kib'] // 1024} MiB t={r['time_cost']} p=1 "
                f"{r.get('implementation', 'argon2-cffi'):>11}: {r['ms_cpu_alone']} ms alone, "
                f"{r['concurrent_verifies_per_cpu_s']}/CPU-s concurrent, {r['concurrent_verifies_per_s_wall']}/s wall"
            )
    if report["targets"]:
        print(f"\ntargets (per server core; previous = {BASELINE}):\n  " + "\n  ".join(report["targets"]))
    if SCALE and report.get("scale"):
        import scale

        print(scale.summary(report["scale"]))
    print(f"\nresults: {path.relative_to(ROOT)}")
    failed = [n for n, r in report["scenarios"].items() if "failed" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
