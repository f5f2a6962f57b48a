"""Django-side chores of the bench, run under the bench stack's prod settings.

    python bench/stack_tasks.py seed USERS_TSV --users N --password P --prefix bench
    python bench/stack_tasks.py argon2 --n 40 --password P
    python bench/stack_tasks.py ledger
    python bench/stack_tasks.py outbox

Each prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import check_password, make_password  # noqa: E402
from django.db import transaction  # noqa: E402


def seed(args: argparse.Namespace) -> dict[str, Any]:
    """Verified customers, each with one EUR account funded through the ledger.

    Users are created through accounts.services.user_create (groups, validation) without a
    password, then all get one argon2id hash of the bench password made with the configured
    parameters: verifying it costs exactly what verifying a per-user hash costs, and seeding
    does not spend a minute hashing.
    """
    from accounts import services as account_services
    from accounts.models import User
    from payments import services as payment_services

    started = time.monotonic()
    password_hash = make_password(args.password)
    rows = []
    for i in range(args.users):
        email = f"{args.prefix}{i:05d}@bench.example"
        with transaction.atomic():
            user = account_services.user_create(email=email, password=None, full_name=f"Bench {i}", email_verified=True)
            account = payment_services.account_open(
                owner=user, currency="EUR", name="Bench current", opening_balance=args.balance
            )
        rows.append((email, str(account.id), account.iban))
    User.objects.filter(email__startswith=args.prefix, email__endswith="@bench.example").update(password=password_hash)
    Path(args.out).write_text("".join("\t".join(row) + "\n" for row in rows))
    return {"users": len(rows), "seconds": round(time.monotonic() - started, 2)}


def argon2(args: argparse.Namespace) -> dict[str, Any]:
    """The hashing ceiling: N verifications of the configured hasher in this one process."""
    encoded = make_password(args.password)
    check_password(args.password, encoded)  # warm-up (imports, first allocation)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(args.n):
        if not check_password(args.password, encoded):
            raise SystemExit("argon2 verification failed")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "hasher": settings.PASSWORD_HASHERS[0],
        "params": {
            "time_cost": settings.ARGON2_TIME_COST,
            "memory_cost_kib": settings.ARGON2_MEMORY_COST_KIB,
            "parallelism": settings.ARGON2_PARALLELISM,
        },
        "encoded_prefix": encoded.split("$")[0] + "$" + "$".join(encoded.split("$")[1:4]),
        "n": args.n,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "verifies_per_cpu_s": round(args.n / cpu, 2) if cpu else None,
        "ms_per_verify_cpu": round(1000 * cpu / args.n, 2),
    }


def ledger(args: argparse.Namespace) -> dict[str, Any]:
    from payments.models import Payment
    from payments.selectors import ledger_inconsistencies, ledger_total

    problems = ledger_inconsistencies()
    by_status: dict[str, int] = {}
    for status in Payment.objects.values_list("status", flat=True):
        by_status[status] = by_status.get(status, 0) + 1
    return {
        "consistent": not problems,
        "problems": problems[:20],
        "ledger_total": str(ledger_total()),
        "payments_by_status": by_status,
    }


def outbox(args: argparse.Namespace) -> dict[str, Any]:
    from notifications.models import OutboxMessage

    by_status: dict[str, int] = {}
    for status in OutboxMessage.objects.values_list("status", flat=True):
        by_status[str(status)] = by_status.get(str(status), 0) + 1
    return {"outbox_by_status": by_status}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seed")
    p.add_argument("out")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--prefix", default="bench")
    p.add_argument("--balance", default="1000000.00")
    p = sub.add_parser("argon2")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--password", required=True)
    sub.add_parser("ledger")
    sub.add_parser("outbox")
    args = parser.parse_args()
    result = {"seed": seed, "argon2": argon2, "ledger": ledger, "outbox": outbox}[args.cmd](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
