"""Private Redis and PostgreSQL servers on loopback for the fault-injection tests.

The shared PostgreSQL (5432) and Redis (6379) are used by other people's runs at the same
time, so these tests never touch them: each fixture starts its own server on another port
as a child process, and the tests stop and restart only that process.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Under pytest-xdist each worker offsets its private servers' ports (gwN: +10 N).
WORKER_OFFSET = 10 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_PORT = int(os.environ.get("FAULTS_REDIS_PORT", "6391")) + WORKER_OFFSET
PG_PORT = int(os.environ.get("FAULTS_PG_PORT", "5439")) + WORKER_OFFSET


def wait_port(port: int, *, up: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                is_up = True
        except OSError:
            is_up = False
        if is_up == up:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} not {'up' if up else 'down'} after {timeout}s")


class PrivateRedis:
    """A throwaway redis-server (no persistence) that a test may stop and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        wait_port(self.port, up=False)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(REDIS_PORT)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (trust on 127.0.0.1) run as the postgres OS user."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bindir = _pg_bin()
        self.base = Path(tempfile.mkdtemp(prefix="bp-faults-pg-"))
        self.datadir = self.base / "data"
        self.url = f"postgres://postgres@127.0.0.1:{port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)

    def init(self) -> None:
        if self.bindir is None:
            pytest.skip("PostgreSQL server binaries are not installed")
        if os.geteuid() == 0:
            shutil.chown(self.base, user="postgres", group="postgres")
        os.chmod(self.base, 0o700)
        self._as_postgres(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self) -> None:
        assert self.bindir is not None
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} -c fsync=off"
        self._as_postgres(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            opts,
            "-l",
            str(self.base / "log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        wait_port(self.port, up=True)

    def stop(self, mode: str = "fast") -> None:
        assert self.bindir is not None
        if (self.datadir / "postmaster.pid").exists():
            self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")
        wait_port(self.port, up=False)

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):  # best effort on teardown
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(PG_PORT)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()
