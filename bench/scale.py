"""The scale scenario of `make bench` (BENCH_SCALE=1): cost as the data grows.

After the small-database scenarios, the same stack's database is grown to bank size in SQL
(generate_series, one statement per table, one shared argon2id hash as the small seed does):

    100,000 customers (each with a EUR account), 2,000,000 audit events over the past year
    (sealed into the hash chain), 1,000,000 ledger entries (100,000 opening postings and 400,000
    completed payments between customers, balances recomputed so the ledger stays consistent),
    200,000 known devices.

Then it measures again, on the big database: the hot paths (the same wrk scenarios as before, so
the comparison is within one run on one stack), the security reports' first page and the
suspicious-activity page (in process, wall time and SQL), the CSV export (time to the first byte,
rows/s, memory), and `audit_verify` full against incremental after new events. Targets (issue 15):
the hot paths within 15 % of their small-database figures per server core, the reports' first
page under 300 ms, audit_verify incremental (its rows read grow with the new events only).

    python bench/scale.py seed    # under the bench stack's environment (bench/runner.py runs it)
    python bench/scale.py measure
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS = int(os.environ.get("BENCH_SCALE_CUSTOMERS") or 100_000)
AUDIT_EVENTS = int(os.environ.get("BENCH_SCALE_AUDIT_EVENTS") or 2_000_000)
LEDGER_ENTRIES = int(os.environ.get("BENCH_SCALE_LEDGER_ENTRIES") or 1_000_000)
DEVICES = int(os.environ.get("BENCH_SCALE_DEVICES") or 200_000)
NEW_EVENTS = int(os.environ.get("BENCH_SCALE_NEW_EVENTS") or 10_000)
HOT_PATHS = ("api_login", "reads", "payments")
REPORTS_TARGET_MS = 300.0
HOT_PATH_TOLERANCE = 0.15
PREFIX = "scale"


# --- orchestration, called from bench/runner.py (no Django in this process) ------------------


def run(stack: Any, bench: Any, report: dict[str, Any], scenario_defs: dict[str, Any], log: Any) -> dict[str, Any]:
    """Grows the database, re-runs the hot paths, measures reports, CSV and audit_verify."""
    out: dict[str, Any] = {}
    report["scale"] = out  # partial results survive a failure further on
    py = str(ROOT / ".venv" / "bin" / "python")
    log(
        f"scale: seeding {CUSTOMERS} customers, {AUDIT_EVENTS} audit events, {LEDGER_ENTRIES} ledger entries, "
        f"{DEVICES} known devices"
    )
    seeded = stack.run([py, str(Path(__file__)), "seed"], timeout=3 * 3600)
    out["seed"] = json.loads(seeded.strip().splitlines()[-1])
    log(f"scale: seeded in {out['seed']['seconds']:.0f} s ({out['seed']['steps']})")
    out["scenarios"] = {}
    for name in HOT_PATHS:
        if name not in scenario_defs:
            continue
        try:
            out["scenarios"][name] = bench.run_scenario(scenario_defs[name])
        except Exception as exc:  # one broken scenario must not hide the others
            log(f"scale {name}: failed: {exc}")
            out["scenarios"][name] = {"failed": str(exc)[:2000]}
    ledger = stack.run([py, str(ROOT / "bench" / "stack_tasks.py"), "ledger"], timeout=1800)
    out["ledger"] = json.loads(ledger.strip().splitlines()[-1])
    log("scale: reports, CSV export, audit_verify")
    try:
        measured = stack.run([py, str(Path(__file__)), "measure"], timeout=3 * 3600)
        out.update(json.loads(measured.strip().splitlines()[-1]))
    except Exception as exc:
        log(f"scale: measuring reports / CSV / audit_verify failed: {str(exc)[-1500:]}")
        out["measure_failed"] = str(exc)[-3000:]
    out["targets"] = verdicts(report.get("scenarios") or {}, out)
    return out


def _per_core(result: dict[str, Any] | None) -> float | None:
    if not result or "skipped" in result or "failed" in result:
        return None
    value = result.get("ops_per_server_cpu_s")
    return float(value) if value else None


def _pg_ms_per_op(result: dict[str, Any] | None) -> float | None:
    if not result or not result.get("ops"):
        return None
    return round(1000 * float(result.get("postgres_cpu_s") or 0.0) / float(result["ops"]), 3)


def verdicts(small: dict[str, Any], scale: dict[str, Any]) -> list[str]:
    lines = []

    def verdict(ok: bool, text: str) -> str:
        return ("met    " if ok else "MISSED ") + text

    for name in HOT_PATHS:
        before, after = _per_core(small.get(name)), _per_core((scale.get("scenarios") or {}).get(name))
        if before is None or after is None:
            lines.append(f"-      {name}: not measured on both databases")
            continue
        ratio = after / before
        pg_before, pg_after = _pg_ms_per_op(small.get(name)), _pg_ms_per_op(scale["scenarios"][name])
        p99_before = small[name]["latency_ms"]["99"]
        p99_after = scale["scenarios"][name]["latency_ms"]["99"]
        lines.append(
            verdict(
                ratio >= 1 - HOT_PATH_TOLERANCE,
                f"{name} at scale {after:.0f}/s per server core vs {before:.0f} small ({100 * ratio:.0f}%, target "
                f">= {100 * (1 - HOT_PATH_TOLERANCE):.0f}%); PostgreSQL CPU {pg_after} vs {pg_before} ms per op; "
                f"p99 {p99_after:.0f} vs {p99_before:.0f} ms",
            )
        )
    reports = scale.get("reports") or {}
    if "index" in reports:
        ms = reports["index"]["median_ms"]
        lines.append(
            verdict(
                ms < REPORTS_TARGET_MS,
                f"reports first page {ms:.0f} ms median (max {reports['index']['max_ms']:.0f}, "
                f"{reports['index']['sql_queries']} SQL) on {reports.get('events_in_range', '?')} events of the "
                f"default range (target < {REPORTS_TARGET_MS:.0f} ms)",
            )
        )
    if "suspicious" in reports:
        ms = reports["suspicious"]["median_ms"]
        lines.append(
            verdict(ms < REPORTS_TARGET_MS, f"suspicious-activity page {ms:.0f} ms (target < {REPORTS_TARGET_MS:.0f})")
        )
    csv = scale.get("csv") or {}
    if csv:
        lines.append(
            verdict(
                csv["first_byte_ms"] < REPORTS_TARGET_MS and csv["rss_growth_mib"] < 64,
                f"CSV export streamed: first bytes after {csv['first_byte_ms']:.0f} ms, {csv['rows']} rows in "
                f"{csv['seconds']:.1f} s ({csv['rows_per_s']:.0f} rows/s), "
                f"process memory +{csv['rss_growth_mib']:.0f} MiB",
            )
        )
    verify = scale.get("audit_verify") or {}
    if verify:
        full, inc = verify["full"], verify["incremental"]
        ok = inc["ok"] and full["ok"] and inc["events_read"] <= verify["new_events"] and not inc["full"]
        lines.append(
            verdict(
                ok,
                f"audit_verify incremental read {inc['events_read']} rows in {inc['seconds']:.2f} s after "
                f"{verify['new_events']} new events; --full read {full['events_read']} rows in {full['seconds']:.1f} s",
            )
        )
    if "ledger" in scale:
        lines.append(verdict(bool(scale["ledger"].get("consistent")), "ledger consistent at scale after the payments"))
    return lines


def summary(scale: dict[str, Any]) -> str:
    seed = scale.get("seed") or {}
    lines = [
        f"\nscale (BENCH_SCALE=1): seeded in {seed.get('seconds', 0):.0f} s: {seed.get('steps')}",
        f"  table sizes: {seed.get('sizes')}",
    ]
    for name, r in (scale.get("scenarios") or {}).items():
        if "ops_per_server_cpu_s" in r:
            lat = r["latency_ms"]
            lines.append(
                f"  {name}: {r['ops_per_s']} {r['unit']}/s, {r['ops_per_server_cpu_s']} per server core-s, "
                f"p50 {lat['50']} p99 {lat['99']} ms, PostgreSQL {r['postgres_cpu_s']} CPU-s, errors {r['errors']}"
            )
    reports = scale.get("reports") or {}
    for page in ("index", "suspicious"):
        if page in reports:
            p = reports[page]
            lines.append(
                f"  reports {page}: median {p['median_ms']} ms, max {p['max_ms']} ms, {p['sql_queries']} SQL "
                f"({p['sql_ms']} ms in SQL); slowest: {p['slowest'][:3]}"
            )
    if scale.get("csv"):
        lines.append(f"  CSV: {scale['csv']}")
    if scale.get("audit_verify"):
        lines.append(f"  audit_verify: {scale['audit_verify']}")
    lines.append("\nscale targets:\n  " + "\n  ".join(scale.get("targets") or []))
    return "\n".join(lines)


# --- inside the stack's Django environment -------------------------------------------------


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
    import django

    django.setup()


def _exec(cursor: Any, sql: str, params: Any = None) -> float:
    t0 = time.monotonic()
    cursor.execute(sql, params)
    return time.monotonic() - t0


def seed() -> dict[str, Any]:
    """Grows the bench database in SQL. Every row is generated by PostgreSQL (generate_series), so
    no data crosses the socket; ids of the audit events follow their time (the order the chain
    seals them in)."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from audit import chain

    started = time.monotonic()
    steps: dict[str, float] = {}
    password_hash = make_password(os.environ.get("BENCH_PASSWORD") or "bench-Correct-Horse-Battery-9")
    payments = max(0, (LEDGER_ENTRIES - 2 * CUSTOMERS) // 2)
    # History is imported into a database migrated today: its months need their partitions first
    # (rows of a month without one would land in the DEFAULT partition, and that month could then
    # never get its own; audit/partitions.py).
    from datetime import timedelta

    from django.utils import timezone

    from audit import partitions

    t0 = time.monotonic()
    partitions.ensure_partitions(since=(timezone.now() - timedelta(days=400)).date())
    steps["audit_partitions"] = time.monotonic() - t0
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        steps["customers"] = _exec(
            cur,
            "INSERT INTO accounts_user (password, is_superuser, public_id, email, full_name, phone, phone_verified, "
            "email_verified, is_active, is_staff, must_reset_password, date_joined) "
            "SELECT %s, false, gen_random_uuid(), %s || lpad(g::text, 6, '0') || '@bench.example', 'Scale ' || g, "
            "'', false, true, true, false, false, now() - interval '400 days' "
            "FROM generate_series(1, %s) g",
            [password_hash, PREFIX, CUSTOMERS],
        )
        steps["groups"] = _exec(
            cur,
            "INSERT INTO accounts_user_groups (user_id, group_id) "
            "SELECT u.id, g.id FROM accounts_user u, auth_group g "
            "WHERE g.name = 'customer' AND u.email LIKE %s",
            [PREFIX + "%@bench.example"],
        )
        steps["accounts"] = _exec(
            cur,
            "INSERT INTO payments_bankaccount "
            "(id, kind, iban, name, currency, balance, created_at, is_active, owner_id) "
            "SELECT gen_random_uuid(), 'customer', 'XS' || lpad(u.id::text, 20, '0'), 'Scale current', 'EUR', 0, "
            "now() - interval '400 days', true, u.id FROM accounts_user u WHERE u.email LIKE %s",
            [PREFIX + "%@bench.example"],
        )
        cur.execute(
            "CREATE TEMP TABLE scale_acc ON COMMIT DROP AS "
            "SELECT row_number() OVER (ORDER BY a.id) AS n, a.id, a.owner_id, a.iban FROM payments_bankaccount a "
            "WHERE a.iban LIKE 'XS%%'"
        )
        cur.execute("CREATE UNIQUE INDEX ON scale_acc (n)")
        cur.execute("ANALYZE scale_acc")
        cur.execute("SELECT id FROM payments_bankaccount WHERE kind = 'funding' AND currency = 'EUR'")
        funding = cur.fetchone()
        if funding is None:
            raise SystemExit("no EUR funding account: run the small seed first")
        # Opening balances from the bank's funding account: one posting, two entries each.
        t0 = time.monotonic()
        cur.execute(
            "CREATE TEMP TABLE scale_open ON COMMIT DROP AS "
            "SELECT gen_random_uuid() AS posting, id AS account, now() - interval '365 days' AS at FROM scale_acc"
        )
        cur.execute(
            "INSERT INTO payments_posting (id, kind, description, created_at) "
            "SELECT posting, 'opening', 'Opening balance (scale)', at FROM scale_open"
        )
        cur.execute(
            "INSERT INTO payments_ledgerentry (amount, balance_after, created_at, account_id, posting_id) "
            "SELECT e.amount, 0, o.at, e.account, o.posting FROM scale_open o "
            "CROSS JOIN LATERAL (VALUES (o.account, 10000.00::numeric), (%s::uuid, -10000.00::numeric)) "
            "AS e(account, amount) ORDER BY o.at",
            [funding[0]],
        )
        steps["opening_postings"] = time.monotonic() - t0
        # Completed payments between customers over the past year: payment, posting, two entries.
        t0 = time.monotonic()
        cur.execute(
            "CREATE TEMP TABLE scale_pay ON COMMIT DROP AS "
            "SELECT gen_random_uuid() AS id, gen_random_uuid() AS posting, "
            "now() - interval '364 days' + (g * (interval '363 days' / %s)) AS at, "
            "(1 + (random() * 9999)::int)::numeric / 100 AS amount, "
            "1 + (random() * (%s - 1))::bigint AS src, 1 + (random() * (%s - 1))::bigint AS dst "
            "FROM generate_series(1, %s) g",
            [max(payments, 1), CUSTOMERS, CUSTOMERS, payments],
        )
        cur.execute(
            "INSERT INTO payments_posting (id, kind, description, created_at) "
            "SELECT posting, 'payment', 'Payment (scale)', at FROM scale_pay"
        )
        cur.execute(
            "INSERT INTO payments_payment (id, payee_name, payee_iban, amount, currency, reference, status, channel, "
            "step_up_reasons, binding_digest, step_up_attempts, step_up_method, refusal_reason, created_at, "
            "completed_at, from_account_id, owner_id, payee_account_id, posting_id, sca_article, sca_exemption, "
            "sca_required) "
            "SELECT p.id, 'Scale payee', d.iban, p.amount, 'EUR', 'scale', 'completed', 'api', '[]'::jsonb, '', 0, "
            "'', '', p.at, p.at, s.id, s.owner_id, d.id, p.posting, '', '', false "
            "FROM scale_pay p JOIN scale_acc s ON s.n = p.src JOIN scale_acc d ON d.n = p.dst"
        )
        cur.execute(
            "INSERT INTO payments_ledgerentry (amount, balance_after, created_at, account_id, posting_id) "
            "SELECT e.amount, 0, p.at, e.account, p.posting "
            "FROM scale_pay p JOIN scale_acc s ON s.n = p.src JOIN scale_acc d ON d.n = p.dst "
            "CROSS JOIN LATERAL (VALUES (s.id, -p.amount), (d.id, p.amount)) AS e(account, amount) ORDER BY p.at"
        )
        steps["payments"] = time.monotonic() - t0
        t0 = time.monotonic()
        # Cached balances equal the sum of each account's entries (the ledger invariant).
        cur.execute(
            "UPDATE payments_bankaccount b SET balance = t.total FROM "
            "(SELECT account_id, sum(amount) AS total FROM payments_ledgerentry GROUP BY account_id) t "
            "WHERE b.id = t.account_id AND b.balance <> t.total RETURNING b.owner_id"
        )
        # Balances written in SQL, as the ledger would: their owners' cached account lists go stale.
        from payments import cache as account_lists

        account_lists.balances_changed(row[0] for row in cur.fetchall())
        steps["balances"] = time.monotonic() - t0
        steps["devices"] = _exec(
            cur,
            "INSERT INTO risk_knowndevice (id, device_id_hash, kind, name, ua_family, first_seen_at, last_seen_at, "
            "last_ip, last_country, last_place, user_id) "
            "SELECT gen_random_uuid(), md5(s.owner_id::text || '/' || k) || md5(k || '/' || s.owner_id::text), "
            "'browser', 'Firefox on Linux', 'Firefox', now() - interval '300 days', "
            "now() - (random() * interval '60 days'), ('10.' || (s.n %% 250) || '.' || k || '.7')::inet, 'NL', "
            "'Amsterdam', s.owner_id FROM scale_acc s CROSS JOIN generate_series(1, %s) k",
            [max(1, DEVICES // CUSTOMERS)],
        )
        # The audit log: a year of events of every kind the reports read, ids in time order.
        steps["audit_events"] = _exec(
            cur,
            "INSERT INTO audit_auditevent (public_id, occurred_at, type, outcome, ip, ua_family, country, reason, "
            "request_id, details, actor_id, user_id) "
            "SELECT gen_random_uuid(), at, "
            "(ARRAY['auth.login_succeeded','auth.login_succeeded','auth.login_succeeded','auth.login_succeeded',"
            "'auth.login_succeeded','auth.login_succeeded','auth.login_failed','auth.login_failed','auth.login_failed',"
            "'auth.logout','token.refreshed','token.refreshed','mfa.verified','mfa.failed','risk.new_device',"
            "'payment.sca_decided','payment.sca_decided','payment.completed','payment.completed','auth.lockout'])"
            "[1 + g %% 20], "
            "CASE WHEN g %% 20 IN (6, 7, 8, 13, 19) THEN 'failure' ELSE 'success' END, "
            "('198.51.' || (g %% 200) || '.' || (g %% 97))::inet, 'Firefox', "
            "(ARRAY['NL','NL','NL','DE','BE','FR','GB','US'])[1 + g %% 8], "
            "CASE WHEN g %% 20 IN (15, 16) THEN (ARRAY['sca_required','low_value','trusted_beneficiary',"
            "'not_required'])[1 + (g / 20) %% 4] WHEN g %% 20 IN (6, 7, 8) THEN 'bad_password' ELSE '' END, "
            "md5(g::text), "
            "CASE WHEN g %% 20 IN (15, 16, 17, 18) THEN jsonb_build_object('amount', "
            "((g %% 50000) / 100.0)::numeric(18,2)::text, 'currency', 'EUR', 'payment', md5(g::text), "
            "'article', CASE WHEN (g / 20) %% 4 = 1 THEN 'RTS Art. 16' ELSE '' END) ELSE '{}'::jsonb END, "
            "u.id, u.id "
            "FROM (SELECT g, "
            "now() - interval '365 days' + g * (interval '365 days' - interval '10 minutes') / %s AS at, "
            "1 + (g::bigint * 7919) %% %s AS n FROM generate_series(1, %s) g) x "
            "JOIN scale_acc u0 ON u0.n = x.n JOIN accounts_user u ON u.id = u0.owner_id ORDER BY g",
            [AUDIT_EVENTS, CUSTOMERS, AUDIT_EVENTS],
        )
    with connection.cursor() as cur:
        t0 = time.monotonic()
        for table in (
            "accounts_user",
            "payments_bankaccount",
            "payments_posting",
            "payments_payment",
            "payments_ledgerentry",
            "risk_knowndevice",
            "audit_auditevent",
        ):
            cur.execute(f"VACUUM ANALYZE {table}")
        steps["vacuum_analyze"] = time.monotonic() - t0
    # The chain seals a contiguous prefix of settled events by id: the small run's events (lower
    # ids, the last minute) must settle first, or nothing after them is sealed.
    _wait_until_settled()
    t0 = time.monotonic()
    sealed = chain.seal_pending(max_batches=10**6)
    steps["seal_chain"] = time.monotonic() - t0
    sizes = _sizes()
    return {
        "seconds": round(time.monotonic() - started, 1),
        "steps": {k: round(v, 1) for k, v in steps.items()},
        "sealed": sealed,
        "seal_batch": int(getattr(settings, "AUDIT_SEAL_BATCH_SIZE", 5000)),
        "sizes": sizes,
    }


def _wait_until_settled() -> None:
    """Bounded wait until the newest audit event is older than the sealer's settle delay."""
    from django.db.models import Max
    from django.utils import timezone

    from audit import chain
    from audit.models import AuditEvent

    newest = AuditEvent.objects.filter(occurred_at__lte=timezone.now()).aggregate(m=Max("occurred_at"))["m"]
    if newest is not None:
        wait = chain.settle_seconds() + 1 - (timezone.now() - newest).total_seconds()
        time.sleep(min(max(0.0, wait), chain.settle_seconds() + 1))


def _sizes() -> dict[str, int]:
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table in (
            "accounts_user",
            "payments_ledgerentry",
            "payments_payment",
            "risk_knowndevice",
            "audit_auditevent",
            "audit_auditcheckpoint",
        ):
            cur.execute(f"SELECT count(*) FROM {table}")
            out[table] = int(cur.fetchone()[0])
    return out


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _staff_client() -> Any:
    from django.contrib.auth.models import Group
    from django.test import Client

    from accounts import services as account_services
    from accounts.models import User
    from mfa.models import TOTPFactor
    from tests.audit.helpers import web_login

    email = "scale-security@bench.example"
    user = User.objects.filter(email=email).first()
    if user is None:
        user = account_services.user_create(email=email, password=None, full_name="Scale security", email_verified=True)
        User.objects.filter(pk=user.pk).update(is_staff=True)
        user.refresh_from_db()
        user.groups.add(Group.objects.get(name="security"))
        factor = TOTPFactor(user=user, name="Authenticator", confirmed=True)
        factor.set_key("00" * 20)
        factor.save()
    client = Client(HTTP_HOST="127.0.0.1", HTTP_USER_AGENT="bench-scale")
    web_login(client, user, amr=["pwd", "otp"])
    return client


def _time_page(client: Any, path: str, repeat: int = 7) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(path)  # warm (templates, caches)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append(1000 * (time.perf_counter() - t0))
    with CaptureQueriesContext(connection) as queries:
        client.get(path)
    captured = [(float(q["time"]) * 1000, q["sql"]) for q in queries.captured_queries]
    return {
        "status": response.status_code,
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "sql_queries": len(captured),
        "sql_ms": round(sum(t for t, _ in captured), 1),
        "slowest": [[round(t, 1), sql[:240]] for t, sql in sorted(captured, reverse=True)[:5]],
    }


def measure() -> dict[str, Any]:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from audit import chain
    from audit.models import AuditEvent

    out: dict[str, Any] = {}
    client = _staff_client()
    since = timezone.now() - timedelta(hours=24)
    out["reports"] = {
        "events_in_range": AuditEvent.objects.filter(occurred_at__gte=since).count(),
        "index": _time_page(client, "/reports/"),
        "suspicious": _time_page(client, "/reports/suspicious/"),
    }
    # CSV: the last 30 days (about 160,000 events), consumed as a browser would, chunk by chunk.
    day = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%d")
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    response = client.get(f"/reports/events.csv?since={day}")
    first_byte = None
    rows = size = 0
    peak = rss0
    for chunk in response.streaming_content:
        if first_byte is None:
            first_byte = time.perf_counter() - t0
        size += len(chunk)
        rows += chunk.count(b"\n")
        if rows % 20000 < 600:
            peak = max(peak, _rss_mib())
    seconds = time.perf_counter() - t0
    peak = max(peak, _rss_mib())
    out["csv"] = {
        "since": day,
        "status": response.status_code,
        "rows": rows - 1,
        "mib": round(size / 2**20, 1),
        "first_byte_ms": round(1000 * (first_byte or seconds), 1),
        "seconds": round(seconds, 2),
        "rows_per_s": round((rows - 1) / seconds, 0) if seconds else 0,
        "rss_growth_mib": round(peak - rss0, 1),
    }
    # audit_verify: the whole chain, then only what came after new events. Everything written so
    # far (the scale scenarios' logins and payments, the export's own audit row) is sealed first.
    _wait_until_settled()
    sealed_before = chain.seal_pending(max_batches=10**6)
    t0 = time.perf_counter()
    full = chain.verify(full=True)
    full_s = time.perf_counter() - t0
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO audit_auditevent (public_id, occurred_at, type, outcome, ua_family, country, reason, "
            "request_id, details) SELECT gen_random_uuid(), now() - interval '5 minutes' + g * interval '1 ms', "
            "'auth.login_succeeded', 'success', 'Firefox', 'NL', '', '', '{}'::jsonb FROM generate_series(1, %s) g",
            [NEW_EVENTS],
        )
    t0 = time.perf_counter()
    sealed = chain.seal_pending(max_batches=10**4)
    seal_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    incremental = chain.verify()
    inc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nothing_new = chain.verify()
    nothing_s = time.perf_counter() - t0

    def shape(result: Any, seconds: float) -> dict[str, Any]:
        return {
            "ok": result.ok,
            "full": result.full,
            "start_seq": result.start_seq,
            "checkpoints_read": result.checkpoints_read,
            "events_read": result.events_read,
            "seconds": round(seconds, 3),
            "message": result.describe()[:300],
        }

    out["audit_verify"] = {
        "new_events": NEW_EVENTS,
        "sealed_before_full": sealed_before,
        "sealed_new": sealed,
        "seal_new_s": round(seal_s, 2),
        "full": shape(full, full_s),
        "incremental": shape(incremental, inc_s),
        "incremental_nothing_new": shape(nothing_new, nothing_s),
    }
    return out


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("seed", "measure"):
        raise SystemExit("usage: scale.py seed|measure")
    _setup_django()
    result = seed() if command == "seed" else measure()
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
