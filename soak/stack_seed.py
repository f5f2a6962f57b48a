"""Gives every fourth soak customer a confirmed email second factor (run under the soak stack's settings).

python soak/stack_seed.py USERS_TSV
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")

import django

django.setup()

from accounts.models import User  # noqa: E402
from mfa.models import EmailFactor  # noqa: E402

FACTOR_EVERY = 4


def main(users_tsv: str) -> None:
    emails = [line.split("\t")[0] for line in Path(users_tsv).read_text().splitlines()]
    chosen = [e for i, e in enumerate(emails) if i % FACTOR_EVERY == 0]
    for user in User.objects.filter(email__in=chosen):
        EmailFactor.objects.get_or_create(user=user, defaults={"name": "Email", "email": user.email, "confirmed": True})
    print(json.dumps({"email_factors": len(chosen)}))


def resend(timeout: float = 240) -> None:
    from notifications.models import OutboxMessage
    from notifications.tasks import outbox_resend_pending

    sent = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).exists():
        sent += int(outbox_resend_pending())
        time.sleep(5)
    print(json.dumps({"resent": sent}))


if __name__ == "__main__":
    if sys.argv[1] == "resend":
        resend()
    else:
        main(sys.argv[2])
