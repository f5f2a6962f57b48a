"""PostgreSQL restarted (crash-like, `pg_ctl restart -m immediate`) during concurrent payments.

A private cluster (tests/faults/conftest.py) gets a copy of the test database's schema; a worker
process (tests/faults/pg_worker.py) pays from four threads while the test restarts the cluster.
Afterwards no payment is partial (completed <=> one balanced posting), the ledger sums to zero
and every cached balance equals its entries, every payment the worker saw succeed is there, and
the worker's later payments succeeded again (it recovered by reconnecting).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("pg_worker.py")


def _copy_schema(pg: Any) -> str:
    """The test database (migrated by pytest-django) restored into the private cluster: no migrate run."""
    assert pg.bindir is not None
    source = connection.settings_dict
    subprocess.run(  # the private cluster's own client binaries
        [str(pg.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "bp_faults"],
        check=True,
        timeout=60,
    )
    dump = subprocess.run(
        [
            str(pg.bindir / "pg_dump"),
            "-Fc",
            "--no-owner",
            "-h",
            str(source["HOST"] or "127.0.0.1"),
            "-p",
            str(source["PORT"] or 5432),
            "-U",
            str(source["USER"] or "postgres"),
            str(source["NAME"]),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
    subprocess.run(
        [
            str(pg.bindir / "pg_restore"),
            "--no-owner",
            "--disable-triggers",
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "-d",
            "bp_faults",
        ],
        input=dump,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return f"postgres://postgres@127.0.0.1:{pg.port}/bp_faults"


def _worker(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DB_CONN_MAX_AGE": "0"}
    return subprocess.Popen([sys.executable, str(WORKER), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def test_restart_during_concurrent_payments_leaves_no_partial_payment(private_postgres: Any) -> None:
    url = _copy_schema(private_postgres)
    worker = _worker(url, "run", "8", "4")
    assert worker.stdout is not None
    assert json.loads(worker.stdout.readline())["ready"]
    assert json.loads(worker.stdout.readline())["in_flight"]  # the worker says payments are flowing
    restarted_at = time.monotonic()
    private_postgres.stop("immediate")  # like a crash: backends killed mid-transaction
    private_postgres.start()  # crash recovery replays the WAL
    assert time.monotonic() - restarted_at < 30
    result = json.loads(worker.stdout.readline())
    assert worker.wait(timeout=60) == 0

    checker = _worker(url, "check")
    state, _ = checker.communicate(timeout=60)
    after = json.loads(state)

    outcomes = result["outcomes"]
    assert outcomes.get("database_error", 0) >= 1, outcomes  # the restart was felt by the payers
    assert outcomes.get("ok_after_reconnect", 0) >= 1, outcomes  # and payments went through again after it
    assert after["inconsistencies"] == []
    assert after["unbalanced_postings"] == []
    assert after["completed_without_posting"] == [] and after["other_with_posting"] == []
    assert set(result["completed"]) <= set(after["completed"])  # nothing acknowledged was lost
    # a payment committed whose acknowledgement the restart cut off is the only extra allowed
    assert len(after["completed"]) - len(result["completed"]) <= outcomes["database_error"]
    assert set(after["statuses"]) <= {"completed"}, after["statuses"]
