"""Smoke tests of the bench harness's parsing helpers and Lua scripts (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_runner", BENCH / "runner.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_runner"] = module
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


def test_parse_wrk_reads_the_json_line_among_wrk_output() -> None:
    output = "Running 1s test @ http://127.0.0.1:1/\n" + 'BENCH_JSON {"requests": 3, "counts": {"me:200": 3}}\n'
    assert runner.parse_wrk(output) == {"requests": 3, "counts": {"me:200": 3}}
    with pytest.raises(ValueError):
        runner.parse_wrk("no json here")


def test_classify_separates_successes_refusals_and_errors() -> None:
    out = runner.classify(
        {"get:200": 10, "post:302": 9, "post:200": 1, "post:429": 2, "get:no_token": 1, "get:500": 1},
        {"get:200", "post:302"},
    )
    assert (out.ok, out.refused, out.errors) == (19, 2, 2)
    assert out.unexpected == {"post:200": 1, "get:500": 1}


def test_cpu_accounting_reads_this_process_tree() -> None:
    stat = runner.proc_stat(os.getpid())
    assert stat is not None and stat[0] == os.getppid() and stat[1] >= 0
    assert runner.tree_cpu(os.getpid()) >= stat[1]
    assert runner.proc_stat(2**22 + 12345) is None
    busy, total = runner.machine_busy()
    assert 0 <= busy <= total


def test_table_marks_skipped_and_failed_scenarios() -> None:
    text = runner.table({"reads": {"skipped": "endpoint missing: GET /api/v1/me"}, "payments": {"failed": "boom"}})
    assert "skipped: endpoint missing" in text and "failed: boom" in text


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.headers.get("Authorization") == "Bearer tok-1" else 401
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_reads_script_counts_statuses_per_step(loopback_server: str, tmp_path: Path) -> None:
    data = tmp_path / "reads.data"
    data.write_text("tok-1\n")
    env = {**os.environ, "BENCH_LUA_DIR": str(BENCH / "lua"), "BENCH_DATA": str(data), "BENCH_RUN_ID": "1"}
    proc = subprocess.run(
        ["wrk", "-t", "1", "-c", "1", "-d", "1s", "-s", str(BENCH / "lua" / "reads.lua"), loopback_server],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = runner.parse_wrk(proc.stdout)
    assert set(result["counts"]) == {"me:200", "accounts:200"}
    assert sum(result["counts"].values()) == result["requests"] > 0
    assert set(result["latency_ms"]["percentiles"]) == {"50", "75", "90", "95", "99", "99.9"}


def test_targets_verdict_says_met_or_missed_and_by_how_much() -> None:
    results = {
        "api_login": {
            "fraction_of_concurrent_argon2": 0.5,
            "ops_per_server_cpu_s": 20.0,
            "argon2": {"concurrent_verifies_per_cpu_s": 40.0},
            "errors": 0,
        },
        "refresh": {"ops_per_server_cpu_s": 320.0, "errors": 0},
        "reads": {"ops_per_server_cpu_s": 500.0, "latency_ms": {"99": 80.0}, "connections": 32, "errors": 1},
        "payments": {"skipped": "endpoint missing"},
    }
    lines = runner.targets_verdict(results, {"consistent": True})
    assert lines[0].startswith("MISSED api login 20.0/s per core = 50% of the concurrent argon2 ceiling 40.0/s")
    assert lines[1].startswith("met    refresh 320/s per core (target 300")
    assert lines[2].startswith("MISSED reads 500/s per core (target 1500, 33%")
    assert any(line.startswith("met    ledger") for line in lines)
    assert any(line.startswith("MISSED errors") for line in lines)
    assert not any("payments" in line and "per core" in line for line in lines)


class _TokenHandler(BaseHTTPRequestHandler):
    """A token endpoint that answers each code once (200 with tokens), a repeated code 400."""

    seen: list[str] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
        ok = (
            self.path == "/o/token/"
            and self.headers.get("Authorization") == "Basic cnA6cw=="
            and form.get("grant_type") == "authorization_code"
            and form.get("redirect_uri") == "https://rp.example/cb"
            and form.get("code_verifier") == "v-" + form.get("code", "")
        )
        with self.lock:
            repeated = form.get("code") in self.seen
            self.seen.append(form.get("code", ""))
        body = json.dumps({"access_token": "a", "id_token": "i"} if ok and not repeated else {"error": "x"}).encode()
        self.send_response(200 if ok and not repeated else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_auth_code_script_presents_each_code_once_then_counts_exhaustion(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        codes = tmp_path / "conn.codes"
        codes.write_text("".join(f"c{i}\tv-c{i}\n" for i in range(5)))
        data = tmp_path / "auth_code.data"
        data.write_text(f"Basic cnA6cw==\thttps://rp.example/cb\t{codes}\n")
        env = {**os.environ, "BENCH_LUA_DIR": str(BENCH / "lua"), "BENCH_DATA": str(data), "BENCH_RUN_ID": "1"}
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        proc = subprocess.run(
            ["wrk", "-t", "1", "-c", "1", "-d", "1s", "-s", str(BENCH / "lua" / "auth_code.lua"), url],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    finally:
        server.shutdown()
        server.server_close()
    result = runner.parse_wrk(proc.stdout)
    # wrk calls the first thread's request() once to check what it builds and never sends that
    # one: its code is skipped, never presented twice.
    sent = _TokenHandler.seen
    assert len(sent) == len(set(sent)) and set(sent) <= {f"c{i}" for i in range(5)} and len(sent) >= 4
    assert sent == sorted(sent)  # in file order
    assert set(result["counts"]) == {"token:200", "token:exhausted"}
    assert result["counts"]["token:200"] == len(sent) and result["counts"]["token:exhausted"] > 0
    outcomes = runner.classify(result["counts"], runner.SCENARIO_DEFS["auth_code"].expected)
    assert outcomes.ok == len(sent) and outcomes.errors == result["counts"]["token:exhausted"]


def test_auth_code_is_a_scenario_with_its_target() -> None:
    assert "auth_code" in runner.ALL_SCENARIOS.split(",")
    assert runner.PER_CORE_TARGETS["auth_code"] == 300.0
    lines = runner.targets_verdict({"auth_code": {"ops_per_server_cpu_s": 150.0, "errors": 0}}, None)
    assert lines[0].startswith("MISSED auth_code 150/s per core (target 300, 50%")


def _load_plain_app() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_plain_app", BENCH / "plain_app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_plain_app_comparison_says_met_only_when_faster_than_both_plain_runs() -> None:
    plain_app = _load_plain_app()
    plain = {
        "before": {
            "scenarios": {"reads": {"ops_per_server_cpu_s": 400.0}, "api_login": {"ops_per_server_cpu_s": 30.0}}
        },
        "after": {"scenarios": {"reads": {"ops_per_server_cpu_s": 500.0}, "api_login": {"failed": "boom"}}},
    }
    ours = {
        "reads": {"ops_per_server_cpu_s": 900.0},
        "api_login": {"ops_per_server_cpu_s": 29.0},
        "refresh": {"ops_per_server_cpu_s": 200.0},  # no plain figure: no verdict
    }
    table, verdicts = plain_app.comparison(ours, plain)
    assert "| reads | 400.0 | 500.0 | 900.0 | 2.00x |" in table
    assert "| api_login | 30.0 | - | 29.0 | 0.97x |" in table
    assert verdicts == [
        "MISSED api_login faster than the plain DRF app: 29/s per core vs plain 30 (0.97x)",
        "met    reads faster than the plain DRF app: 900/s per core vs plain 400 / 500 (2.00x)",
    ]
    # faster than the mean but not than the better run is not "faster"
    _, verdicts = plain_app.comparison({"reads": {"ops_per_server_cpu_s": 480.0}}, plain)
    assert verdicts[0].startswith("MISSED reads")


def test_plain_app_settings_and_routes_load(tmp_path: Path) -> None:
    """The plain reference app passes Django's system checks with the environment bench/plain_app.py gives it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "plain.settings",
        "PYTHONPATH": str(BENCH / "plain"),
        "DJANGO_SECRET_KEY": "test-only-not-secret",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/bp_plain_check",
        "JWT_PRIVATE_KEY_FILE": str(pem),
        "PLAIN_JWT_PUBLIC_KEY": public.decode(),
    }
    proc = subprocess.run(
        [sys.executable, str(BENCH / "plain" / "manage.py"), "check", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout
