"""What `make run` chains together: seed_demo_oauth's output -> examples/demo_env.py -> the env files
the relying party and the service client read, down to a token from the live portal."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from examples.service_client import main as service_client_main
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _seed_demo_oauth() -> str:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo_oauth"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    return seeded.stdout


def _demo_env(printed: str, into: Path, issuer: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo_env.py"), "--examples-dir", str(into)],
        input=printed,
        env={**os.environ, "OIDC_ISSUER": issuer},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_seed_output_becomes_env_files_that_the_apps_use(
    tmp_path: Path,
    live_server: Any,
    settings: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    UserFactory(email="customer@example.com")
    settings.PUBLIC_BASE_URL = live_server.url
    (tmp_path / "relying_party").mkdir()

    # The seed as `make run` runs it: its own process (here on the test database), its output piped on.
    seeded = _seed_demo_oauth()
    result = _demo_env(seeded, tmp_path, live_server.url)
    assert result.returncode == 0, result.stderr
    assert seeded in result.stdout, "the seed's own output is passed through"
    mortgage = tmp_path / "relying_party" / ".env.mortgage-app"
    for written in (mortgage, tmp_path / "relying_party" / ".env.reporting-tool", tmp_path / "service_client.env"):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600, written

    # The relying party's settings read its file.
    shown = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.OIDC_CLIENT_ID, s.RP_BASE_URL, s.RP_NAME, s.OIDC_ISSUER)",
        ],
        cwd=ROOT / "examples" / "relying_party",
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_", "RP_"))},
            "RP_ENV_FILE": str(mortgage),
            "RP_DATABASE_PATH": str(tmp_path / "rp.sqlite3"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    last_line = (shown.stdout.strip().splitlines() or [""])[-1]
    assert last_line.split() == ["mortgage-app", "http://127.0.0.1:8001", "Mortgage", "app", live_server.url], (
        shown.stdout + shown.stderr
    )

    # The service client's file holds working credentials: a token from the portal, then the payments.
    for name in ("SERVICE_CLIENT_ID", "SERVICE_CLIENT_SECRET", "OIDC_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    assert service_client_main(["--env-file", str(tmp_path / "service_client.env")]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip().startswith("[")


def test_a_seed_output_without_credentials_stops_make_run(tmp_path: Path) -> None:
    (tmp_path / "relying_party").mkdir()
    result = _demo_env("Demo OAuth clients (development only):\n", tmp_path, "http://127.0.0.1:8000")
    assert result.returncode == 1
    assert "no credentials for mortgage-app, reporting-tool, payments-reader" in result.stderr
    assert not list((tmp_path / "relying_party").iterdir())
