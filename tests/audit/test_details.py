"""An event's details as stored (issue 15: the redaction is remembered per key and per short string,
and skipped on strings none of the patterns can match), and events written inside a caller's own
statement (audit.services.insert_statement, the payment's one write)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.db import connection, transaction

from accounts.models import User
from audit import services
from audit.events import EventType, Outcome
from audit.models import AuditEvent
from core import context
from core.logging import redact_value
from tests.accounts.factories import UserFactory

# Strings an event's details may hold, and strings each redaction pattern of core.logging catches
# (some of them made of the "inert" characters but one, to test the fast path's edge).
SAMPLES = [
    "",
    "1.00",
    "EUR",
    "api",
    "9c60c9d3-daff-4a57-a866-03e5acf7e91a",
    "9c60c9d3daff4a57a86603e5acf7e91a",
    "NL57…0001",
    "DE89 **** 3000",
    "RTS Art. 15",
    "STEP_UP_THRESHOLD",
    "recurring:no",
    "below_threshold:exempt",
    "unusual_amount,new_beneficiary",
    "Bearer abcdefghijklmnop",
    "token abcdefghijklmnop",
    "basic QWxhZGRpbjpvcGVuc2VzYW1l",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
    "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
    "eyJhbGciOiJIUzI1NiJ9",
    "cookie=abc",
    "Cookie: sessionid=abc",
    "password=hunter2",
    "password:hunter2",
    "secret=x",
    "code 123456",
    "code#123456",
    "otp 12345678",
    "pin 1234567",
    "code123456",
    "/reset/abcdefghijklmnopqrstuvwxyz012345",
    "see /verify/abcdefghijklmnopqrstuvwxyz/ now",
    "/payments/9c60c9d3-daff-4a57-a866-03e5acf7e91a",
    'name="password"\r\n\r\nhunter2',
    "x" * 300 + " code 123456",
    "access_token=abc&x=1",
    "A-b_c.d,e*f+g",
]


@pytest.mark.parametrize("value", SAMPLES)
@pytest.mark.parametrize("key", ["reason_text", "payee", "note", "signature", "api_key"])
def test_details_are_redacted_as_core_logging_redacts_them(key: str, value: str) -> None:
    expected = redact_value(key, value)
    assert services._clean_details({key: value}) == {key: expected}
    assert services._clean_details({key: value}) == {key: expected}  # remembered: the same answer


def test_the_fast_path_changes_nothing_that_a_pattern_would_change() -> None:
    for value in SAMPLES:
        if services._INERT.fullmatch(value) and "eyJ" not in value:
            assert redact_value("note", value) == value, value


@pytest.mark.parametrize("key", ["password", "otp_code", "Refresh", "access", "client_secret", "cookie"])
def test_a_key_naming_a_secret_is_refused_every_time(key: str) -> None:
    for _ in range(2):  # the verdict is remembered, the refusal too
        with pytest.raises(ValueError, match="must not carry secrets"):
            services._clean_details({"payment": "p", key: "x"})


def test_values_that_are_not_strings_are_kept() -> None:
    details: dict[str, Any] = {"rules": ["a:no"], "required": False, "risk_score": None, "n": 3}
    assert services._clean_details(details) == details


def _columns(event: AuditEvent) -> dict[str, Any]:
    return {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields if not f.primary_key}


@pytest.mark.django_db(transaction=True)
def test_insert_statement_writes_what_record_writes_and_rolls_back_with_the_caller() -> None:
    user = cast(User, UserFactory())
    token = context.set_context(
        context.RequestContext(ip="203.0.113.9", ua_family="Firefox", country="NL", request_id="r1")
    )
    try:
        built = [
            services.event(
                type=EventType.PAYMENT_CREATED, user=user, details={"payment": "p1", "payee": "DE89 **** 3000"}
            ),
            services.event(
                type=EventType.PAYMENT_SCA_DECIDED,
                user=user,
                outcome=Outcome.INFO,
                reason="not_required",
                details={"rules": ["threshold:no"], "article": "RTS Art. 16"},
            ),
        ]
    finally:
        context.reset_context(token)
    sql, params = services.insert_statement(built)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"WITH w AS ({sql}) SELECT 1", params)
        services.written(built)
    stored = list(AuditEvent.objects.filter(user=user).order_by("id"))
    assert [_columns(e) for e in stored] == [_columns(e) for e in built]
    assert stored[0].ip == "203.0.113.9" and stored[0].country == "NL" and stored[1].reason == "not_required"
    assert stored[0].id < stored[1].id  # in the order given
    with pytest.raises(ValueError):  # written once
        services.insert_statement(built)

    more = [services.event(type=EventType.PAYMENT_COMPLETED, user=user, details={"payment": "p2"})]
    sql, params = services.insert_statement(more)
    with pytest.raises(RuntimeError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        raise RuntimeError("the action failed")
    assert not AuditEvent.objects.filter(type=EventType.PAYMENT_COMPLETED, user=user).exists()


def test_insert_statement_needs_events() -> None:
    with pytest.raises(ValueError):
        services.insert_statement([])
