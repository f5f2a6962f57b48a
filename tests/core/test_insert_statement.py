"""core.sql.insert_statement: the one builder of the hot paths' INSERTs (login and token rows through
insert_rows, the provider's token rows, audit events beside a payment, the payment itself).

Its SQL and values are what Django's own insert compiler produces for the same rows, for a model
with a set primary key (UUID or explicit integer) and for one whose id the database generates
(several rows in one statement); expressions go through the compiler itself; and it refuses what
one statement cannot write.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db.models.functions import Now
from django.db.models.sql import InsertQuery
from django.utils import timezone

from accounts.models import User
from audit import services as audit
from audit.events import EventType
from audit.models import AuditEvent
from core.sql import insert_statement, mark_saved, run_together
from idp import services as idp_services
from idp.models import AccessToken
from payments.models import Payment
from payments.services import account_open


def _compiled(model: Any, rows: list[Any], *, with_pk: bool) -> tuple[str, list[Any]]:
    fields = [
        f
        for f in model._meta.local_concrete_fields
        if not f.generated and not (f.primary_key and f.db_returning and not with_pk)
    ]
    query = InsertQuery(model)
    query.insert_values(fields, rows)
    ((sql, params),) = query.get_compiler(using="default").as_sql()
    return sql, list(params)


def _plain(params: list[Any], skip: set[int] = frozenset()) -> list[Any]:  # type: ignore[assignment]
    return [getattr(v, "obj", v) for i, v in enumerate(params) if i not in skip]  # Jsonb -> its value


def test_rows_with_their_primary_key_are_written_as_the_orm_compiles_them(user: User) -> None:
    client, _secret = idp_services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    names = [f.attname for f in AccessToken._meta.local_concrete_fields if not f.generated]
    moving = {names.index("created"), names.index("updated")}  # pre_save sets them again
    for n in range(3):
        access = AccessToken(
            pk=10_000 + n,
            user=user,
            application=client,
            scope=f"read:accounts {n}",
            jti=f"jti-{n}",
            expires=timezone.now(),
            resource=[f"https://api.example/{n}"],
        )
        sql, params = insert_statement([access])
        expected_sql, expected = _compiled(AccessToken, [access], with_pk=True)
        assert sql == expected_sql and len(params) == len(expected) == len(names)
        assert _plain(params, moving) == _plain(expected, moving)
        assert f"read:accounts {n}" in params and 10_000 + n in params


def test_several_rows_whose_ids_the_database_makes_are_one_statement_that_writes_them(user: User) -> None:
    events = [audit.event(type=EventType.LOGIN_SUCCEEDED, user=user, details={"n": n}) for n in range(3)]
    sql, params = insert_statement(events)
    # Django 5.2 compiles several rows into INSERT ... SELECT * FROM UNNEST(arrays) on PostgreSQL; this is
    # the VALUES form: the compiler's statement of one row, with a group of placeholders per row.
    one_sql, _ = _compiled(AuditEvent, events[:1], with_pk=False)
    row = one_sql[one_sql.index(" VALUES ") + len(" VALUES ") :]
    assert sql == one_sql + (", " + row) * 2 and '"id"' not in sql.split("VALUES")[0]
    expected = [value for built in events for value in _compiled(AuditEvent, [built], with_pk=False)[1]]
    assert _plain(params) == _plain(expected)
    before = AuditEvent.objects.count()
    run_together([(sql, params)])
    mark_saved(events)
    assert AuditEvent.objects.count() == before + 3
    assert [e.details for e in AuditEvent.objects.order_by("-id")[:3]][::-1] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(not e._state.adding and e._state.db == "default" for e in events)


def test_a_row_with_a_uuid_key_is_written_whole(user: User) -> None:
    account = account_open(owner=user, currency="EUR", name="Current", opening_balance=Decimal("10.00"))
    payment = Payment(
        owner=user,
        from_account=account,
        payee_iban="DE89370400440532013000",
        payee_name="Someone",
        amount=Decimal("1.00"),
        currency="EUR",
        reference="insert test",
        status=Payment.Status.PENDING_STEP_UP,
    )
    sql, params = insert_statement([payment])
    expected_sql, expected = _compiled(Payment, [payment], with_pk=True)
    fields = [f for f in Payment._meta.local_concrete_fields if not f.generated]
    moving = {i for i, f in enumerate(fields) if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)}
    assert sql == expected_sql and payment.pk in params
    assert _plain(params, moving) == _plain(expected, moving)
    run_together([(sql, params)])
    assert Payment.objects.get(pk=payment.pk).reference == "insert test"


def test_an_expression_goes_through_the_compiler(user: User) -> None:
    client, _secret = idp_services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    access = AccessToken(pk=20_000, user=user, application=client, scope="read:accounts", jti="j", expires=Now())
    sql, _params = insert_statement([access])
    assert "STATEMENT_TIMESTAMP()" in sql or "CURRENT_TIMESTAMP" in sql
    run_together([(sql, _params)])
    assert AccessToken.objects.get(pk=20_000).expires <= timezone.now()


def test_what_one_statement_cannot_write_is_refused(user: User) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        insert_statement([])
    first = audit.event(type=EventType.LOGIN_SUCCEEDED, user=user)
    with pytest.raises(TypeError, match="one model"):
        insert_statement([first, user])
    saved = audit.record(type=EventType.LOGIN_SUCCEEDED, user=user)
    with pytest.raises(ValueError, match="new rows only"):
        insert_statement([saved])
    with_key = audit.event(type=EventType.LOGIN_SUCCEEDED, user=user)
    with_key.pk = 123_456
    with pytest.raises(ValueError, match="all or none"):
        insert_statement([first, with_key])
