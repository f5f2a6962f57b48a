"""Seeds the plain reference app: N customers sharing one argon2id hash of the bench password (as
bench/stack_tasks.py seeds the portal), an account each, and one stock django-oauth-toolkit
client-credentials application. Prints one JSON object: the users file and the client."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "plain.settings")

import django

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import transaction  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402
from plain.models import Account, User  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    started = time.monotonic()
    encoded = make_password(args.password)
    with transaction.atomic():
        users = User.objects.bulk_create(
            [User(email=f"bench{i:05d}@bench.example", password=encoded) for i in range(args.users)]
        )
        accounts = Account.objects.bulk_create(
            [
                Account(owner=u, name="Bench current", iban=f"XX00PLAIN{i:016d}", currency="EUR", balance=1_000_000)
                for i, u in enumerate(users)
            ]
        )
        secret = secrets.token_urlsafe(32)
        app = Application.objects.create(
            name="bench service",
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,  # hashed on save with PASSWORD_HASHERS[0], as stock DOT does
        )
    Path(args.out).write_text("".join(f"{u.email}\t{a.id}\t{a.iban}\n" for u, a in zip(users, accounts, strict=True)))
    print(
        json.dumps(
            {
                "users": len(users),
                "client_id": app.client_id,
                "client_secret": secret,
                "scopes": "read:accounts",
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
