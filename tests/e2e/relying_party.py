"""The demo relying party (examples/relying_party) as a second live server beside the portal's.

Each instance is its own process (gunicorn, one worker) on a free port of this machine, with its own
SQLite file, registered at the portal through `manage.py create_oauth_client` with exactly the
redirect, post-logout redirect and back-channel logout URIs of that port.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from django.core.management import call_command

RP_DIR = Path(__file__).resolve().parents[2] / "examples" / "relying_party"
READY = re.compile(r"Listening at: http://127\.0\.0\.1:\d+")
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def register_client(
    name: str,
    *,
    redirect_uri: str,
    backchannel_logout_uri: str | None = None,
    post_logout_redirect_uri: str | None = None,
    trusted: bool = False,
    scopes: str = "openid email",
) -> tuple[str, str]:
    """A confidential authorization-code client, through the documented command; (client_id, secret)."""
    out = StringIO()
    args = [
        "--name",
        name,
        "--kind",
        "confidential",
        "--grant",
        "authorization-code",
        "--redirect-uri",
        redirect_uri,
        "--scopes",
        scopes,
    ]
    if post_logout_redirect_uri:
        args += ["--post-logout-redirect-uri", post_logout_redirect_uri]
    if backchannel_logout_uri:
        args += ["--backchannel-logout-uri", backchannel_logout_uri]
    if trusted:
        args.append("--trusted")
    call_command("create_oauth_client", *args, stdout=out)
    printed = dict(re.findall(r"^(client_id|client_secret)=(\S+)$", out.getvalue(), re.MULTILINE))
    assert set(printed) == {"client_id", "client_secret"}, out.getvalue()
    return printed["client_id"], printed["client_secret"]


@dataclass
class RelyingParty:
    name: str
    url: str
    client_id: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def start(
    *,
    name: str,
    issuer: str,
    workdir: Path,
    trusted: bool,
    host: str = "localhost",
) -> RelyingParty:
    """Registers a client for a fresh port, migrates its SQLite file and serves it until `stop()`."""
    port = free_port()
    url = f"http://{host}:{port}"
    client_id, secret = register_client(
        name,
        redirect_uri=f"{url}/oidc/callback/",
        backchannel_logout_uri=f"{url}/oidc/backchannel-logout/",
        post_logout_redirect_uri=f"{url}/",
        trusted=trusted,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_", "RP_"))}
    env.update(
        {
            "OIDC_ISSUER": issuer,
            "OIDC_CLIENT_ID": client_id,
            "OIDC_CLIENT_SECRET": secret,
            "RP_BASE_URL": url,
            "RP_NAME": name,
            "RP_DATABASE_PATH": str(workdir / f"rp-{port}.sqlite3"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=RP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "rp.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--access-logfile",
            "-",
            "--error-logfile",
            "-",
        ],
        cwd=RP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rp = RelyingParty(name=name, url=url, client_id=client_id, process=process)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            rp.output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name=f"rp-{port}-output", daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT_SECONDS)
            if line is None:
                raise AssertionError(f"{name} exited before serving:\n{rp.log()}")
            if READY.search(line):
                return rp
    except queue.Empty:
        rp.stop()
        raise AssertionError(f"{name} did not start within {START_TIMEOUT_SECONDS} s:\n{rp.log()}") from None
