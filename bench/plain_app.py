"""The plain DRF + simplejwt app (bench/plain/), measured with the same wrk scripts, server and CPU accounting.

Issue 15 compares the portal with what a team gets from the stock libraries (bench/plain/plain/__init__.py).
bench/runner.py runs this before and after the portal's own scenarios, so that the machine's drift
during a run shows in the two plain figures:

    python bench/plain_app.py before|after RESULT_JSON

with BENCH_WORK, BENCH_DB and BENCH_PORT pointing at the plain app's own directory, database and port
(runner.py sets them). `before` makes a fresh database, migrates and seeds it; `after` reuses it.
The plain app needs no Redis, Celery or mail: its stack is only the WSGI server (the portal's
server, workers, threads and access log), on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import runner  # bench/runner.py: its settings come from the environment (BENCH_*)

PLAIN = runner.BENCH / "plain"
# The paths the plain app serves as the portal does (same requests, same success answers).
PLAIN_SCENARIOS = ("api_login", "refresh", "reads", "client_credentials")


class PlainStack(runner.Stack):
    def prepare_env(self) -> None:
        from cryptography.hazmat.primitives import serialization

        super().prepare_env()
        key = serialization.load_pem_private_key((runner.WORK / "jwt_private.pem").read_bytes(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "plain.settings",
                "PYTHONPATH": str(PLAIN),
                "PLAIN_JWT_PUBLIC_KEY": public.decode(),
            }
        )

    def fresh_database(self) -> None:  # the plain app has no Redis to flush
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (runner.DB_NAME,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{runner.DB_NAME}"')
            conn.execute(f'CREATE DATABASE "{runner.DB_NAME}"')

    def server_command(self, server: str) -> list[str]:
        cmd = super().server_command(server)
        return [("plain.wsgi:application" if a == "config.wsgi:application" else a) for a in cmd]

    def start_all(self) -> None:
        self.start("app", self.server_command(self.server))
        self.wait_healthy()


class PlainBench(runner.Bench):
    client: tuple[str, str] = ("", "")

    def oauth_client(self) -> tuple[str, str]:
        return self.client


# --- called by bench/runner.py ---------------------------------------------------------------


def run_phase(phase: str) -> dict[str, Any]:
    """Runs this module for one phase in its own process (its own BENCH_* settings) and returns its report."""
    import subprocess

    work = runner.WORK / "plain"
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{phase}.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "BENCH_WORK": str(work),
            "BENCH_DB": f"{runner.DB_NAME}_plain",
            "BENCH_PORT": str(runner.PORT + 1),
            "BENCH_PROFILE": "",
            "BENCH_CENSUS": "0",
        }
    )
    timeout = 600 + 2 * len(PLAIN_SCENARIOS) * (runner.DURATION + runner.WARMUP + 60)
    proc = subprocess.run(
        [runner.PY, str(Path(__file__).resolve()), phase, str(out)], cwd=runner.ROOT, env=env, timeout=timeout
    )
    if not out.exists():
        return {"phase": phase, "failed": f"bench/plain_app.py {phase} exited {proc.returncode} without a report"}
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def per_core(result: dict[str, Any] | None) -> float | None:
    if not result or "failed" in result or "skipped" in result:
        return None
    value = result.get("ops_per_server_cpu_s")
    return float(value) if value else None


def comparison(ours: dict[str, Any], plain: dict[str, Any]) -> tuple[str, list[str]]:
    """A table of the plain app (before, after) beside the portal, per server core, and one verdict line per
    path: met when the portal does more per server core than the better of the two plain figures."""
    rows = [
        "| path, per server core | plain app before | plain app after | bank-portal | bank-portal / plain (mean) |",
        "|---|---|---|---|---|",
    ]
    verdicts = []
    for name in PLAIN_SCENARIOS:
        before = per_core(plain.get("before", {}).get("scenarios", {}).get(name))
        after = per_core(plain.get("after", {}).get("scenarios", {}).get(name))
        mine = per_core(ours.get(name))
        if not (before or after or mine):
            continue  # not run this time (BENCH_SCENARIOS)
        known = [v for v in (before, after) if v]
        mean = sum(known) / len(known) if known else None
        ratio = f"{mine / mean:.2f}x" if mine and mean else "-"
        rows.append(f"| {name} | {runner.fmt(before)} | {runner.fmt(after)} | {runner.fmt(mine)} | {ratio} |")
        if mine and known:
            ok = mine > max(known)
            verdicts.append(
                ("met    " if ok else "MISSED ")
                + f"{name} faster than the plain DRF app: {mine:.0f}/s per core vs plain "
                + " / ".join(f"{v:.0f}" for v in (before, after) if v)
                + f" ({ratio})"
            )
    return "\n".join(rows), verdicts


def main() -> int:
    phase, out = sys.argv[1], Path(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the server
    runner.WORK.mkdir(parents=True, exist_ok=True)
    stack = PlainStack()
    report: dict[str, Any] = {"phase": phase, "scenarios": {}}
    try:
        stack.prepare_env()
        users_file = runner.WORK / "users.tsv"
        seed_file = runner.WORK / "seed.json"
        if phase == "before" or not seed_file.exists():
            runner.log(f"plain app: fresh database {runner.DB_NAME}, migrate, seed {runner.USERS} customers")
            stack.fresh_database()
            stack.run([runner.PY, str(PLAIN / "manage.py"), "migrate", "--noinput"], timeout=600)
            seeded = stack.run(
                [
                    *(runner.PY, str(PLAIN / "seed.py"), str(users_file)),
                    *("--users", str(runner.USERS), "--password", runner.PASSWORD),
                ],
                timeout=600,
            )
            seed_file.write_text(seeded.strip().splitlines()[-1])
        seed = json.loads(seed_file.read_text())
        report["seed"] = {k: v for k, v in seed.items() if k != "client_secret"}
        runner.log(f"plain app ({phase}): starting {stack.server} on port {runner.PORT}")
        stack.start_all()
        bench = PlainBench(stack)
        bench.users = [tuple(line.split("\t")) for line in users_file.read_text().splitlines()]  # type: ignore[misc]
        pair = f"{seed['client_id']}:{seed['client_secret']}".encode()
        bench.client = ("Basic " + runner.base64.b64encode(pair).decode(), str(seed["scopes"]))
        for name in runner.SCENARIOS:
            if name not in PLAIN_SCENARIOS:
                continue
            try:
                report["scenarios"][name] = bench.run_scenario(runner.SCENARIO_DEFS[name])
            except Exception as exc:  # one broken scenario must not hide the others
                runner.log(f"plain app {name}: failed: {exc}")
                report["scenarios"][name] = {"failed": str(exc)[:2000]}
    finally:
        stack.stop()
        out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
