"""PgBouncer in transaction mode (docs/operations/scaling.md): one setting, and nothing that needs a session.

In transaction mode each transaction may run on another server connection, so session state
(session-level advisory locks, SET, LISTEN, temporary tables, WITH HOLD cursors) would leak or be
lost, and server-side cursors and prepared statements would point at the wrong server. The
setting turns off what Django and psycopg would otherwise use; the scan keeps the code free of
the rest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "audit", "core", "mfa", "notifications", "payments", "risk", "idp", "config")
SESSION_STATE = re.compile(
    r"pg_advisory_lock\(|pg_try_advisory_lock\(|\bLISTEN\s|\bNOTIFY\s|CREATE\s+TEMP|WITH\s+HOLD|"
    r"[\"']\s*SET\s+(SESSION\s+)?[a-z_.]+\s*(=|TO)\s"  # SQL keywords are upper case in this code base
)


@pytest.fixture(autouse=True)
def _db_for_all() -> None:
    """Overrides tests/conftest.py: nothing here touches PostgreSQL."""


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Overrides tests/conftest.py: nothing here touches Redis."""


def _database_settings(**env: str) -> dict[str, object]:
    code = (
        "from django.conf import settings; import json; print(json.dumps(settings.DATABASES['default'], default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_transaction_mode_is_one_setting() -> None:
    default = _database_settings()
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is False
    assert "prepare_threshold" not in dict(default.get("OPTIONS") or {})  # type: ignore[call-overload]
    pooled = _database_settings(PGBOUNCER_TRANSACTION_MODE="true")
    assert pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert dict(pooled["OPTIONS"])["prepare_threshold"] is None  # type: ignore[call-overload]
    alone = _database_settings(DISABLE_SERVER_SIDE_CURSORS="true")
    assert alone["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_no_code_depends_on_database_session_state() -> None:
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if SESSION_STATE.search(line) and not line.lstrip().startswith("#"):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "session state under PgBouncer transaction mode:\n" + "\n".join(found)
