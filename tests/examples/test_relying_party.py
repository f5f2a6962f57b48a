"""The demo relying party's own suite (examples/relying_party/rp/tests), run as the separate Django
project it is: its settings, its SQLite test database, a fake provider behind `responses`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RP_DIR = Path(__file__).resolve().parents[2] / "examples" / "relying_party"


def test_relying_party_suite_passes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_", "RP_"))}
    env["RP_LOG_LEVEL"] = "WARNING"
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "rp", "--noinput", "-v", "2"],
        cwd=RP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # Every module of the suite ran (a rename or an import error would otherwise pass unnoticed).
    assert "Ran 0 tests" not in report
    assert "test_back_channel_logout_ends_the_matching_session_at_once" in report
    assert "test_id_token_whose_at_hash_does_not_match_the_access_token_is_refused" in report
