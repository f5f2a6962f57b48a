#!/usr/bin/env python
"""`make run`: turns the credentials `manage.py seed_demo_oauth` prints into the demo apps' env files.

    manage.py seed_demo_oauth | python examples/demo_env.py

Passes the command's output through unchanged, then writes (mode 0600, all git-ignored):
examples/relying_party/.env.mortgage-app (:8001), examples/relying_party/.env.reporting-tool (:8002)
and examples/service_client.env. The seed sets the (development-only) credentials; this script
holds none of its own and only copies them next to the apps that use them. It fails when one is
missing, so `make run` never starts an app that cannot sign in.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
ISSUER = os.environ.get("OIDC_ISSUER", "http://127.0.0.1:8000")
CREDENTIALS = re.compile(r"client_id=(?P<id>\S+)\s+client_secret=(?P<secret>\S+)")

RELYING_PARTIES = {
    # client_id: (name shown by the app, where it is served)
    "mortgage-app": ("Mortgage app", "http://127.0.0.1:8001"),
    "reporting-tool": ("Reporting tool", "http://127.0.0.1:8002"),
}
SERVICE_CLIENT = "payments-reader"


def _write(path: Path, values: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# Written by `make run` (examples/demo_env.py) from seed_demo_oauth; development only.\n")
        out.writelines(f"{name}={value}\n" for name, value in values.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Writes the demo apps' env files from seed_demo_oauth's output.")
    parser.add_argument("--examples-dir", type=Path, default=EXAMPLES, help="where the apps live (default: here)")
    examples = parser.parse_args(argv).examples_dir
    printed = sys.stdin.read()
    sys.stdout.write(printed)
    secrets = {m["id"]: m["secret"] for m in CREDENTIALS.finditer(printed)}
    missing = [cid for cid in [*RELYING_PARTIES, SERVICE_CLIENT] if cid not in secrets]
    if missing:
        print(f"demo_env: seed_demo_oauth printed no credentials for {', '.join(missing)}", file=sys.stderr)
        return 1
    for client_id, (name, base_url) in RELYING_PARTIES.items():
        _write(
            examples / "relying_party" / f".env.{client_id}",
            {
                "OIDC_ISSUER": ISSUER,
                "OIDC_CLIENT_ID": client_id,
                "OIDC_CLIENT_SECRET": secrets[client_id],
                "RP_BASE_URL": base_url,
                "RP_NAME": name,
            },
        )
    _write(
        examples / "service_client.env",
        {"OIDC_ISSUER": ISSUER, "SERVICE_CLIENT_ID": SERVICE_CLIENT, "SERVICE_CLIENT_SECRET": secrets[SERVICE_CLIENT]},
    )
    print("Demo apps: Mortgage app http://127.0.0.1:8001, Reporting tool http://127.0.0.1:8002")
    print("Service client: .venv/bin/python examples/service_client.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
