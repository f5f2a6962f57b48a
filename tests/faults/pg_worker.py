"""A small Django program run against the private PostgreSQL of tests/faults (not collected by pytest).

    python tests/faults/pg_worker.py run SECONDS THREADS   # sets up a customer, then pays concurrently
    python tests/faults/pg_worker.py check                  # prints the ledger and payment state

DATABASE_URL points it at the private cluster; the test restarts that cluster while `run` works.
Each line of output is JSON; `run` prints {"ready": true} once its accounts exist.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.db import InterfaceError, OperationalError, connection  # noqa: E402
from django.db.models import Sum  # noqa: E402

from accounts.models import User  # noqa: E402
from payments import services  # noqa: E402
from payments.models import BankAccount, LedgerEntry, Payment  # noqa: E402
from payments.selectors import ledger_inconsistencies  # noqa: E402

IN_FLIGHT_AFTER = 20


def emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def run(seconds: float, threads: int) -> None:
    user = User.objects.create_user(email="faults@example.com", password="correct horse battery staple")  # type: ignore[attr-defined]
    source = services.account_open(owner=user, currency="EUR", opening_balance=Decimal("100000.00"))
    target = services.account_open(owner=user, currency="EUR")
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")
    connection.close()
    emit({"ready": True, "source": str(source.id)})
    deadline = time.monotonic() + seconds
    outcomes: Counter[str] = Counter()
    completed: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        i = 0
        saw_error = False
        while time.monotonic() < deadline:
            i += 1
            try:
                outcome = services.payment_create(
                    user=user,
                    from_account=source.id,
                    amount="1.00",
                    currency="EUR",
                    to_iban=target.iban,
                    reference=f"fault {n}-{i}",
                    channel="api",
                    idempotency_key=f"faults-{n}-{i}",
                    body_hash=f"{n}-{i}",
                )
                with lock:
                    outcomes["ok"] += 1
                    if outcomes["ok"] == IN_FLIGHT_AFTER:
                        emit({"in_flight": True})  # payments are flowing: the test may now crash the server
                    if saw_error:
                        outcomes["ok_after_reconnect"] += 1
                    completed.append(str(outcome.payment.id))
            except (OperationalError, InterfaceError):
                with lock:
                    outcomes["database_error"] += 1
                saw_error = True
                connection.close()  # a new connection on the next try, as a request would get
                time.sleep(0.05)
            except services.PaymentError as exc:
                with lock:
                    outcomes[exc.code] += 1
        connection.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    emit({"outcomes": dict(outcomes), "completed": completed})


def check() -> None:
    per_posting = dict(
        LedgerEntry.objects.values("posting").annotate(total=Sum("amount")).values_list("posting", "total")
    )
    payments = list(Payment.objects.values_list("id", "status", "posting_id"))
    emit(
        {
            "inconsistencies": ledger_inconsistencies(),
            "statuses": dict(Counter(status for _, status, _ in payments)),
            "completed": [str(pk) for pk, status, _ in payments if status == "completed"],
            # a completed payment has exactly one balanced posting; any other payment has none
            "completed_without_posting": [
                str(pk) for pk, status, posting in payments if status == "completed" and posting not in per_posting
            ],
            "other_with_posting": [str(pk) for pk, status, posting in payments if status != "completed" and posting],
            "unbalanced_postings": [str(pk) for pk, total in per_posting.items() if total != 0],
        }
    )


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(float(sys.argv[2]), int(sys.argv[3]))
    else:
        check()
