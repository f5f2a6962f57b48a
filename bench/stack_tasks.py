"""Django-side chores of the bench, run under the bench stack's prod settings.

    python bench/stack_tasks.py seed USERS_TSV --users N --password P --prefix bench
    python bench/stack_tasks.py argon2 --n 40 --password P
    python bench/stack_tasks.py auth-codes USERS_TSV --out-dir D --users N --per-user K --password P
    python bench/stack_tasks.py ledger
    python bench/stack_tasks.py outbox

Each prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import check_password, make_password  # noqa: E402
from django.db import transaction  # noqa: E402


def seed(args: argparse.Namespace) -> dict[str, Any]:
    """Verified customers, each with one EUR account funded through the ledger.

    Users are created through accounts.services.user_create (groups, validation) without a
    password, then all get one argon2id hash of the bench password made with the configured
    parameters: verifying it costs exactly what verifying a per-user hash costs, and seeding
    does not spend a minute hashing.
    """
    from accounts import services as account_services
    from accounts.models import User
    from payments import services as payment_services

    started = time.monotonic()
    password_hash = make_password(args.password)
    rows = []
    for i in range(args.users):
        email = f"{args.prefix}{i:05d}@bench.example"
        with transaction.atomic():
            user = account_services.user_create(email=email, password=None, full_name=f"Bench {i}", email_verified=True)
            account = payment_services.account_open(
                owner=user, currency="EUR", name="Bench current", opening_balance=args.balance
            )
        rows.append((email, str(account.id), account.iban))
    User.objects.filter(email__startswith=args.prefix, email__endswith="@bench.example").update(password=password_hash)
    if os.environ.get("BENCH_REDIS_FRESH", "0") != "1":
        # The stack's Redis was flushed for this run. A Redis that has kept its counters for a day
        # (the steady state measured here) has an old epoch; a just-lost one makes every login look
        # its CAPTCHA and lockout failures up in the audit log for a window (accounts/security.py).
        from django.core.cache import cache

        from accounts.security import REDIS_EPOCH_KEY

        cache.set(REDIS_EPOCH_KEY, float(int(time.time()) - 86400), timeout=None)
    Path(args.out).write_text("".join("\t".join(row) + "\n" for row in rows))
    return {"users": len(rows), "seconds": round(time.monotonic() - started, 2)}


def concurrently(verify: Any, n: int, threads: int) -> tuple[int, float, float]:
    """`verify` n times spread over `threads` threads at once (both verifiers release the GIL):
    (verifications done, process CPU seconds, wall seconds)."""
    threads = max(1, threads)
    per_thread = max(1, n // threads)

    def many() -> None:
        for _ in range(per_thread):
            verify()

    pool = [threading.Thread(target=many) for _ in range(threads)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return per_thread * threads, time.process_time() - cpu0, time.perf_counter() - wall0


def argon2(args: argparse.Namespace) -> dict[str, Any]:
    """The hashing ceiling: N verifications of the configured hasher in this one process."""
    from argon2 import PasswordHasher

    encoded = make_password(args.password)
    check_password(args.password, encoded)  # warm-up (imports, first allocation)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(args.n):
        if not check_password(args.password, encoded):
            raise SystemExit("argon2 verification failed")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    # The same verifications from as many threads as the server runs at once: the hashes' working
    # memory in parallel contends for caches and memory bandwidth, so each costs more CPU than
    # alone. Reported beside the serial ceiling, not instead of it.
    done, ccpu, _ = concurrently(lambda: check_password(args.password, encoded), args.n, args.threads)
    # The same hash through argon2-cffi (Django's stock verifier, which the plain app uses): the
    # portal's hasher verifies through libsodium (accounts.hashers), so its ceiling is higher.
    cffi, phc = PasswordHasher(), "$" + encoded.split("$", 1)[1]
    cffi_done, cffi_cpu, _ = concurrently(lambda: cffi.verify(phc, args.password), args.n, args.threads)
    return {
        "concurrent_threads": max(1, args.threads),
        "concurrent_verifies_per_cpu_s": round(done / ccpu, 2) if ccpu else None,
        "concurrent_verifies_per_cpu_s_argon2_cffi": round(cffi_done / cffi_cpu, 2) if cffi_cpu else None,
        "hasher": settings.PASSWORD_HASHERS[0],
        "params": {
            "time_cost": settings.ARGON2_TIME_COST,
            "memory_cost_kib": settings.ARGON2_MEMORY_COST_KIB,
            "parallelism": settings.ARGON2_PARALLELISM,
        },
        "encoded_prefix": encoded.split("$")[0] + "$" + "$".join(encoded.split("$")[1:4]),
        "n": args.n,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "verifies_per_cpu_s": round(args.n / cpu, 2) if cpu else None,
        "ms_per_verify_cpu": round(1000 * cpu / args.n, 2),
    }


# OWASP's Password Storage Cheat Sheet: argon2id parameter sets of equal strength (memory x
# passes). Which verifies fastest *under concurrency* depends on the machine's caches and memory
# bandwidth: measured here, the choice is in bench/README.md ("argon2 parameters").
OWASP_ARGON2ID = [(46 * 1024, 1), (19 * 1024, 2), (12 * 1024, 3), (9 * 1024, 4), (7 * 1024, 5)]


def argon2_params(args: argparse.Namespace) -> dict[str, Any]:
    """Each OWASP argon2id set through both verifiers: CPU per verification alone, and per CPU-second
    with N threads at once. `libsodium` is what the portal verifies with (accounts.hashers),
    `argon2-cffi` what Django's stock hasher (and the plain app) uses; the stored string is the same."""
    from argon2 import PasswordHasher, Type
    from nacl.pwhash import argon2id

    password = args.password.encode()
    results = []
    for memory_kib, time_cost in OWASP_ARGON2ID:
        hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID)
        encoded = hasher.hash(args.password)
        encoded_bytes = encoded.encode()
        verifiers = {
            "libsodium": lambda e=encoded_bytes: argon2id.verify(e, password),
            "argon2-cffi": lambda h=hasher, e=encoded: h.verify(e, args.password),
        }
        for implementation, verify in verifiers.items():
            verify()
            cpu0 = time.process_time()
            for _ in range(args.n):
                verify()
            alone = (time.process_time() - cpu0) / args.n
            n, cpu, wall = concurrently(verify, args.n, args.threads)
            results.append(
                {
                    "implementation": implementation,
                    "memory_cost_kib": memory_kib,
                    "time_cost": time_cost,
                    "parallelism": 1,
                    "ms_cpu_alone": round(1000 * alone, 2),
                    "concurrent_threads": max(1, args.threads),
                    "concurrent_verifies_per_cpu_s": round(n / cpu, 2) if cpu else None,
                    "concurrent_verifies_per_s_wall": round(n / wall, 2) if wall else None,
                }
            )
    ours = [r for r in results if r["implementation"] == "libsodium"]
    best = max(ours, key=lambda r: r["concurrent_verifies_per_cpu_s"] or 0)
    return {"sets": results, "fastest_concurrent": {k: best[k] for k in ("memory_cost_kib", "time_cost")}}


def oauth_client(args: argparse.Namespace) -> dict[str, Any]:
    """A client-credentials client of the provider bound to one bench customer (idp.services)."""
    from accounts.models import User
    from idp import services as idp_services

    owner = User.objects.get(email=args.owner_email)
    client, secret = idp_services.client_create(
        name=f"bench-{int(time.time())}",
        kind="confidential",
        grant="client-credentials",
        scopes=args.scopes,
        owner=owner,
    )
    return {"client_id": client.client_id, "client_secret": secret, "scopes": args.scopes}


AUTH_CODE_REDIRECT = "https://rp.bench.example/oidc/callback/"
AUTH_CODE_SCOPES = "openid offline_access read:accounts"


def _web_login_context(email: str, password: str) -> Any:
    """A real web login of a bench customer (the login page, in process): its sid, auth_time, amr."""
    from django.test import Client as DjangoClient

    from idp.tokens import LoginContext

    browser = DjangoClient(HTTP_HOST="127.0.0.1", HTTP_USER_AGENT="bench-auth-code")
    response = browser.post("/accounts/login/", {"email": email, "password": password})
    if response.status_code != 302:
        raise RuntimeError(f"web login of {email} answered {response.status_code}")
    from datetime import UTC, datetime

    session = browser.session
    auth_time = datetime.fromtimestamp(float(session["auth_time"]), tz=UTC)
    return LoginContext(sid=str(session["sid"]), auth_time=auth_time, amr=tuple(session.get("amr") or ()))


def mint_codes(*, client: Any, user: Any, login: Any, n: int, scopes: str = AUTH_CODE_SCOPES) -> list[tuple[str, str]]:
    """n authorization codes (with their PKCE S256 verifiers) through the provider's own code path:
    oauthlib's authorization endpoint with the credentials idp.views.AuthorizeView hands it after
    login and consent (the user, the web login's sid/auth_time/amr), so every code is a grant row
    written by idp.validator (its audit event included)."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlencode, urlsplit

    from django.urls import reverse
    from oauth2_provider.views.mixins import OAuthLibMixin

    from idp import conf

    core = OAuthLibMixin.get_oauthlib_core()
    endpoint = conf.issuer() + reverse("oauth2_provider:authorize")
    out = []
    for _ in range(n):
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "client_id": client.client_id,
            "response_type": "code",
            "redirect_uri": AUTH_CODE_REDIRECT,
            "scope": scopes,
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        credentials = {
            **{k: v for k, v in params.items() if k != "scope"},
            "user": user,
            "idp_login": login,
            "idp_dpop_jkt": "",
        }
        headers, _body, status = core.server.create_authorization_response(
            uri=endpoint + "?" + urlencode(params),
            http_method="GET",
            headers={},
            scopes=scopes.split(),
            credentials=credentials,
        )
        location = headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code", [""])[0]
        if status != 302 or not code:
            raise RuntimeError(f"the authorization endpoint answered {status}: {location[:300]}")
        out.append((code, verifier))
    return out


def auth_code_client(owner_email: str) -> tuple[Any, str]:
    """A confidential relying party (authorization code, PKCE S256, one https redirect URI)."""
    from accounts.models import User
    from idp import services as idp_services

    client, secret = idp_services.client_create(
        name=f"bench-rp-{int(time.time())}",
        kind="confidential",
        grant="authorization-code",
        redirect_uris=[AUTH_CODE_REDIRECT],
        scopes=AUTH_CODE_SCOPES,
        trusted=True,
        owner=User.objects.get(email=owner_email),
    )
    return client, secret


def auth_codes(args: argparse.Namespace) -> dict[str, Any]:
    """A relying party and `--per-user` codes for each of `--users` bench customers, each after a
    real web login of that customer (so every grant carries a live sid), one file per customer
    (code TAB verifier per line). Their consent is recorded as the authorization page records a
    trusted client's (idp.services.consent_record)."""
    from accounts.models import User
    from idp import services as idp_services

    started = time.monotonic()
    rows = [line.split("\t") for line in Path(args.users_tsv).read_text().splitlines()]
    emails = [r[0] for r in rows[-args.users :]]
    client, secret = auth_code_client(emails[0])
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for i, email in enumerate(emails):
        user = User.objects.get(email=email)
        login = _web_login_context(email, args.password)
        idp_services.consent_record(user=user, client=client, scopes=AUTH_CODE_SCOPES.split(), shown=False)
        codes: list[tuple[str, str]] = []
        while len(codes) < args.per_user:
            with transaction.atomic():  # batches: the seed's commits, not the measured path's
                codes += mint_codes(client=client, user=user, login=login, n=min(500, args.per_user - len(codes)))
        path = out_dir / f"user{i:03d}.codes"
        path.write_text("".join(f"{c}\t{v}\n" for c, v in codes))
        files.append(str(path))
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "redirect_uri": AUTH_CODE_REDIRECT,
        "scopes": AUTH_CODE_SCOPES,
        "files": files,
        "codes": args.per_user * len(files),
        "seconds": round(time.monotonic() - started, 2),
    }


def ledger(args: argparse.Namespace) -> dict[str, Any]:
    from payments.models import Payment
    from payments.selectors import ledger_inconsistencies, ledger_total

    problems = ledger_inconsistencies()
    by_status: dict[str, int] = {}
    for status in Payment.objects.values_list("status", flat=True):
        by_status[status] = by_status.get(status, 0) + 1
    return {
        "consistent": not problems,
        "problems": problems[:20],
        "ledger_total": str(ledger_total()),
        "payments_by_status": by_status,
    }


def outbox(args: argparse.Namespace) -> dict[str, Any]:
    from notifications.models import OutboxMessage

    by_status: dict[str, int] = {}
    for status in OutboxMessage.objects.values_list("status", flat=True):
        by_status[str(status)] = by_status.get(str(status), 0) + 1
    return {"outbox_by_status": by_status}


class _RedisCounter:
    """Counts what redis-py sends while active: round trips (every send_packed_command: one command,
    or a whole pipeline) and commands (a pipeline's each, by name)."""

    def __init__(self) -> None:
        import redis.connection

        self.n = 0  # commands
        self.round_trips = 0
        self.names: dict[str, int] = {}
        self._cls = redis.connection.AbstractConnection
        self._orig = (self._cls.send_command, self._cls.send_packed_command, self._cls.pack_commands)

    def _count(self, name: str) -> None:
        self.n += 1
        self.names[name] = self.names.get(name, 0) + 1

    def __enter__(self) -> _RedisCounter:
        counter = self
        send_command, send_packed_command, pack_commands = self._orig

        def counting_send_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            counter._count(str(args[0]) if args else "?")
            return send_command(conn, *args, **kwargs)

        def counting_send_packed_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            counter.round_trips += 1
            return send_packed_command(conn, *args, **kwargs)

        def counting_pack_commands(conn: Any, commands: Any) -> Any:
            commands = list(commands)
            for command in commands:
                counter._count(str(command[0]) if command else "?")
            return pack_commands(conn, commands)

        self._cls.send_command = counting_send_command  # type: ignore[method-assign]
        self._cls.send_packed_command = counting_send_packed_command  # type: ignore[method-assign]
        self._cls.pack_commands = counting_pack_commands  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._cls.send_command, self._cls.send_packed_command, self._cls.pack_commands = self._orig  # type: ignore[method-assign]


def census(args: argparse.Namespace) -> dict[str, Any]:
    """SQL queries, Redis commands and CPU of one request of each scenario, in process.

    Uses Django's test Client against the bench database (prod settings): the same code path
    as under gunicorn, minus the HTTP server. The second of two identical requests is
    measured (warm caches, like a steady state). Users: the seeded bench users.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    rows = [line.split("\t") for line in Path(args.users_tsv).read_text().splitlines()]
    out: dict[str, Any] = {}

    def measure(name: str, fn: Any, repeatable: bool = True) -> Any:
        fn()  # warm
        with CaptureQueriesContext(connection) as q, _RedisCounter() as r:
            cpu0 = time.process_time()
            response = fn()
            cpu = time.process_time() - cpu0
        sqls = [x["sql"] for x in q.captured_queries]
        out[name] = {
            "status": response.status_code,
            "sql_queries": len(sqls),
            "redis_commands": r.n,
            "redis_round_trips": r.round_trips,
            "redis_by_command": r.names,
            "cpu_ms": round(1000 * cpu, 2),
            "sql": [s[:160] for s in sqls],
        }
        if repeatable and args.repeat > 1:
            # The mean of many calls: one call's CPU time is noisy on a shared machine.
            cpu0 = time.process_time()
            for _ in range(args.repeat):
                fn()
            out[name]["cpu_ms"] = round(1000 * (time.process_time() - cpu0) / args.repeat, 3)
            out[name]["repeat"] = args.repeat
        return response

    # What one Celery publish (an outbox email's on_commit hook) costs in a web process: sent to a
    # queue no worker consumes, which is deleted afterwards.
    from notifications.tasks import outbox_send

    outbox_send.apply_async(args=["bench-census"], queue="bench-census-null")
    cpu0 = time.process_time()
    for _ in range(20):
        outbox_send.apply_async(args=["bench-census"], queue="bench-census-null")
    out["celery_publish"] = {"cpu_ms": round(1000 * (time.process_time() - cpu0) / 20, 2)}
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("bench-census-null")

    host = {"HTTP_HOST": "127.0.0.1", "HTTP_USER_AGENT": "bench-census"}
    web = Client(**host)
    i = iter(rows[-10:])
    measure("web_login_get", lambda: web.get("/accounts/login/"))
    measure(
        "web_login_post",
        lambda: Client(**host).post("/accounts/login/", {"email": next(i)[0], "password": args.password}),
        repeatable=False,
    )
    api = Client(**host)

    def login(email: str) -> Any:
        return api.post(
            "/api/v1/auth/login",
            {
                "email": email,
                "password": args.password,
                "device_id": "bench-" + re.sub(r"[^A-Za-z0-9._:-]", "-", email),
            },
            content_type="application/json",
        )

    j = iter(rows[-20:-10])
    resp = measure("api_login", lambda: login(next(j)[0]), repeatable=False)
    if resp.status_code != 200:
        return out
    tokens = resp.json()
    chain = {"refresh": tokens["refresh"]}

    def refresh() -> Any:
        r = api.post("/api/v1/auth/token/refresh", {"refresh": chain["refresh"]}, content_type="application/json")
        if r.status_code == 200:
            chain["refresh"] = r.json()["refresh"]
        return r

    measure("refresh", refresh)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access']}"}
    measure("me", lambda: api.get("/api/v1/me", **bearer))
    accounts = measure("accounts", lambda: api.get("/api/v1/accounts", **bearer))
    # The same read with a provider token (client credentials): it should cost what a mobile token costs.
    try:
        client_secret = oauth_client(argparse.Namespace(owner_email=rows[-1][0], scopes="read:accounts read:payments"))
        import base64

        basic = base64.b64encode(f"{client_secret['client_id']}:{client_secret['client_secret']}".encode()).decode()
        issued = api.post(
            "/o/token/",
            "grant_type=client_credentials&scope=read%3Aaccounts",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Basic {basic}",
        )
        if issued.status_code == 200:
            provider = {"HTTP_AUTHORIZATION": f"Bearer {issued.json()['access_token']}"}
            measure("accounts_provider_token", lambda: api.get("/api/v1/accounts", **provider))
    except Exception as exc:  # the census goes on without it
        out["accounts_provider_token"] = {"failed": str(exc)[:300], "cpu_ms": None}
    # The token endpoint itself: a client-credentials token, and an authorization-code exchange
    # (PKCE S256, Basic client auth, openid offline_access: access, refresh and ID token).
    try:
        import base64

        cc = oauth_client(argparse.Namespace(owner_email=rows[-2][0], scopes="read:accounts read:payments"))
        cc_basic = base64.b64encode(f"{cc['client_id']}:{cc['client_secret']}".encode()).decode()
        measure(
            "token_client_credentials",
            lambda: api.post(
                "/o/token/",
                "grant_type=client_credentials&scope=read%3Aaccounts",
                content_type="application/x-www-form-urlencoded",
                HTTP_AUTHORIZATION=f"Basic {cc_basic}",
            ),
        )
        from urllib.parse import urlencode

        from accounts.models import User

        owner = rows[-21][0]
        rp, rp_secret = auth_code_client(owner)
        rp_basic = base64.b64encode(f"{rp.client_id}:{rp_secret}".encode()).decode()
        from idp import services as idp_services

        user = User.objects.get(email=owner)
        idp_services.consent_record(user=user, client=rp, scopes=AUTH_CODE_SCOPES.split(), shown=False)
        codes = mint_codes(client=rp, user=user, login=_web_login_context(owner, args.password), n=args.repeat + 2)

        def exchange() -> Any:
            code, verifier = codes.pop()
            body = {"grant_type": "authorization_code", "code": code, "redirect_uri": AUTH_CODE_REDIRECT}
            return api.post(
                "/o/token/",
                urlencode({**body, "code_verifier": verifier}),
                content_type="application/x-www-form-urlencoded",
                HTTP_AUTHORIZATION=f"Basic {rp_basic}",
            )

        measure("token_auth_code", exchange)
    except Exception as exc:  # the census goes on without it
        out["token_auth_code"] = {"failed": str(exc)[:300], "cpu_ms": None}
    if accounts.status_code == 200 and accounts.json():
        source = accounts.json()[0]["id"]
        payee = rows[0][2]
        n = iter(range(100000))

        def pay() -> Any:
            return api.post(
                "/api/v1/payments",
                {"from_account": source, "to_iban": payee, "amount": "1.00", "currency": "EUR", "reference": "census"},
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=f"census-{time.time()}-{next(n)}",
                **bearer,
            )

        try:
            measure("payment_create", pay)
        except Exception as exc:  # the census keeps what it measured before
            out["payment_create"] = {"failed": str(exc)[:300], "cpu_ms": None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seed")
    p.add_argument("out")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--prefix", default="bench")
    p.add_argument("--balance", default="1000000.00")
    p = sub.add_parser("argon2")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--password", required=True)
    p = sub.add_parser("argon2-params")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--password", required=True)
    p = sub.add_parser("oauth-client")
    p.add_argument("--owner-email", required=True)
    p.add_argument("--scopes", default="read:accounts read:payments")
    p = sub.add_parser("auth-codes")
    p.add_argument("users_tsv")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--per-user", type=int, required=True)
    p.add_argument("--password", required=True)
    sub.add_parser("ledger")
    sub.add_parser("outbox")
    p = sub.add_parser("census")
    p.add_argument("users_tsv")
    p.add_argument("--password", required=True)
    p.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    commands = {
        "seed": seed,
        "argon2": argon2,
        "argon2-params": argon2_params,
        "oauth-client": oauth_client,
        "auth-codes": auth_codes,
        "ledger": ledger,
        "outbox": outbox,
        "census": census,
    }
    result = commands[args.cmd](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
