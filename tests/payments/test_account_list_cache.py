"""Issue 15: GET /api/v1/accounts from the owner's cached list (payments.cache): no SQL when warm,
and every balance or account change shows on the next read, for every owner it touched."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from payments import cache as account_lists
from payments import ledger, selectors, services
from payments.models import BankAccount
from tests.accounts.factories import UserFactory
from tests.payments.conftest import EXTERNAL_IBAN, api_client_for


def _balances(client: APIClient) -> list[str]:
    response = client.get("/api/v1/accounts")
    assert response.status_code == 200, response.content
    return [row["balance"] for row in response.json()]


def _pay(client: APIClient, account: BankAccount, iban: str, key: str, amount: str = "1.00") -> Any:
    return client.post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": iban, "amount": amount, "currency": "EUR", "reference": "r"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _move(payer: BankAccount, payee: BankAccount, amount: str) -> None:
    """One posting through the ledger's one-statement path (the one payments take)."""
    ledger.posting_execute(
        kind="transfer",
        description="t",
        currency="EUR",
        lines=[(payer.id, -Decimal(amount)), (payee.id, Decimal(amount))],
        created_at=payer.created_at,
    )


def test_a_warm_accounts_list_runs_no_sql(api: APIClient, account: BankAccount) -> None:
    assert _balances(api) == ["50000.00"]  # fills the cache
    with CaptureQueriesContext(connection) as queries:
        assert _balances(api) == ["50000.00"]
    assert [q["sql"] for q in queries.captured_queries] == []


@pytest.mark.parametrize("payee", ["internal", "external"])
def test_a_payment_shows_at_once_in_the_payers_and_the_payees_list(
    payee: str,
    api: APIClient,
    account: BankAccount,
    other_customer: User,
    other_account: BankAccount,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payee_api = api_client_for(other_customer)
    assert (_balances(api), _balances(payee_api)) == (["50000.00"], ["100.00"])  # both warm
    iban = other_account.iban if payee == "internal" else EXTERNAL_IBAN
    with django_capture_on_commit_callbacks(execute=True):
        assert _pay(api, account, iban, "k1", amount="250.00").status_code == 201
    assert _balances(api) == ["49750.00"]
    assert _balances(payee_api) == (["350.00"] if payee == "internal" else ["100.00"])


def test_the_new_generation_waits_for_the_commit(
    api: APIClient, account: BankAccount, other_account: BankAccount, django_capture_on_commit_callbacks: Any
) -> None:
    """A posting names its owners from the balance UPDATE; their lists go stale when it commits."""
    assert _balances(api) == ["50000.00"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _move(account, other_account, "5.00")
    # Before the commit, the committed balance is still the one to show (the posting may roll back).
    assert _balances(api) == ["50000.00"]
    for callback in callbacks:
        callback()
    assert _balances(api) == ["49995.00"]


def test_a_read_that_raced_a_posting_is_never_served(
    api: APIClient,
    customer: User,
    account: BankAccount,
    other_account: BankAccount,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The read-then-write race: a list read before a posting committed carries the old generation."""
    _, generation = account_lists.account_lists.get(customer.pk)  # a reader starts ...
    stale = [selectors.account_representation(a) for a in selectors.accounts_for_user(user=customer)]
    with django_capture_on_commit_callbacks(execute=True):  # ... a posting lands and commits ...
        ledger.posting_create(
            kind="transfer", description="t", lines=[(account, Decimal("-7.00")), (other_account, Decimal("7.00"))]
        )
    account_lists.account_lists.put(customer.pk, generation, stale)  # ... and the reader writes late
    assert _balances(api) == ["49993.00"]


def test_opening_renaming_and_closing_an_account_show_at_once(
    api: APIClient, customer: User, account: BankAccount, django_capture_on_commit_callbacks: Any
) -> None:
    assert _balances(api) == ["50000.00"]
    with django_capture_on_commit_callbacks(execute=True):
        savings = services.account_open(owner=customer, currency="EUR", name="Savings", opening_balance=Decimal("9"))
    assert _balances(api) == ["50000.00", "9.00"]
    savings.name = "Holiday"
    savings.save(update_fields=["name"])
    assert [row["name"] for row in api.get("/api/v1/accounts").json()] == ["Current", "Holiday"]
    savings.is_active = False
    savings.save(update_fields=["is_active"])
    assert _balances(api) == ["50000.00"]


def test_an_account_moved_to_another_owner_leaves_the_first_owners_list(api: APIClient, account: BankAccount) -> None:
    heir = UserFactory.create()
    heir_api = api_client_for(heir)
    assert (_balances(api), _balances(heir_api)) == (["50000.00"], [])
    account.owner = heir
    account.save(update_fields=["owner"])
    assert (_balances(api), _balances(heir_api)) == ([], ["50000.00"])


def test_the_bank_own_accounts_name_no_owner(account: BankAccount, django_capture_on_commit_callbacks: Any) -> None:
    """A posting between the bank's own accounts and a customer's regenerates only the customer."""
    funding = services.internal_account(kind=BankAccount.Kind.FUNDING, currency="EUR")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _move(funding, account, "1.00")
    keys = [key for callback in callbacks for key in callback.args[1]]  # (group, keys)
    assert keys == [f"gen:accounts:{account.owner_id}"]
