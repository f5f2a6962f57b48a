"""A payment's SCA facts read the same few index pages however long the customer's history is
(issue 15: at scale a payment's PostgreSQL CPU grew six-fold; "paid this payee before" and the PSD2
history count walked every payment of the customer). Measured with EXPLAIN (ANALYZE, BUFFERS) of
the facts' statement for a customer with a short and then a long history outside the window."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from payments import sca, services
from payments.models import BankAccount, Payment, ScaState
from tests.accounts.factories import UserFactory
from tests.payments.conftest import EXTERNAL_IBAN

NEW_PAYEE = "FR1420041010050500013M02606"  # never paid


def _history(user: User, account: BankAccount, count: int, *, days_ago: int = 2) -> None:
    """`count` completed payments to other payees, a minute apart, from `days_ago` days back (outside
    the day and the window), then VACUUM ANALYZE (as autovacuum would: index-only scans need the
    visibility map)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{Payment._meta.db_table}" ("id", "payee_name", "payee_iban", "amount", "currency", '  # noqa: S608
            '"reference", "status", "channel", "step_up_reasons", "binding_digest", "step_up_attempts", '
            '"step_up_method", "refusal_reason", "created_at", "completed_at", "from_account_id", "owner_id", '
            '"sca_article", "sca_exemption", "sca_required") '
            "SELECT gen_random_uuid(), 'x', 'NL' || lpad((g %% 40)::text, 16, '0'), 1, 'EUR', '', 'completed', "
            "'api', '[]'::jsonb, '', 0, '', '', now() - %s * interval '1 day' - g * interval '1 minute', now(), "
            "%s, %s, '', '', false FROM generate_series(1, %s) AS g",
            [days_ago, account.id, user.pk, count],
        )
        cursor.execute(f'VACUUM ANALYZE "{Payment._meta.db_table}"')


def _facts_plan(user: User, account: BankAccount) -> dict[str, Any]:
    state, _ = ScaState.objects.get_or_create(user=user)
    query = sca.facts_query(
        user_id=user.pk,
        account_id=account.id,
        currency="EUR",
        payee_iban=NEW_PAYEE,
        beneficiary=None,
        state=state,
        now=timezone.now(),
    )
    sql = f"SELECT {query.columns} FROM (SELECT 1) AS one{query.join}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, query.column_params + query.join_params)
        (plan,) = cursor.fetchone()
    found = plan if isinstance(plan, list) else json.loads(plan)
    return dict(found[0]["Plan"])


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]


@pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction
@pytest.mark.parametrize("profile", ["default", "psd2"])
def test_the_facts_read_no_more_pages_with_a_long_history(
    profile: str, customer: User, account: BankAccount, settings: Any
) -> None:
    settings.SECURITY_PROFILE = profile
    for _ in range(3):  # today's payments: what the day's and the window's totals must read
        services.payment_create(
            user=customer, from_account=account.id, amount="2.00", currency="EUR", to_iban=EXTERNAL_IBAN
        )
    # Other customers' history first: the planner sees one customer among many, as at scale.
    for other in cast(list[User], UserFactory.create_batch(40)):
        _history(other, services.account_open(owner=other, currency="EUR"), 1000)
    _history(customer, account, 300)  # more than the latest 50 payees (PSD2) the facts read anyway
    short = _facts_plan(customer, account)
    _history(customer, account, 3000, days_ago=30)  # older: the latest 50 payees stay the same rows
    long = _facts_plan(customer, account)
    assert long["Shared Hit Blocks"] + long.get("Shared Read Blocks", 0) <= (
        short["Shared Hit Blocks"] + short.get("Shared Read Blocks", 0) + 8  # a deeper index, at most
    ), f"{_summary(short)}\n{_summary(long)}"
    scans = [n for n in _nodes(long) if n.get("Relation Name") == Payment._meta.db_table]
    assert scans and all(n["Node Type"] in ("Index Only Scan", "Index Scan", "Index Scan Backward") for n in scans), [
        (n["Node Type"], n.get("Index Name")) for n in scans
    ]
    assert any(n.get("Index Name") == "payment_owner_payee_idx" for n in scans)  # paid this payee before: one probe


def _summary(plan: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(n["Node Type"], n.get("Index Name"), n.get("Shared Hit Blocks")) for n in _nodes(plan)]
