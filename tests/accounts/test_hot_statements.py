"""The login's and the refresh's statements compiled once and written together (core.sql, issue 15):
the same rows, objects and refusals as the ORM's own paths, fewer statements."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import RefreshToken, User, UserSession
from accounts.services import user_for_login
from audit.events import EventType
from audit.models import AuditEvent
from audit.services import event, record_many
from core.sql import PreparedSelect, insert_rows, update_sql
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory


def _user(**kwargs: Any) -> User:
    return cast(User, UserFactory(**kwargs))


def _orm_user(email: str) -> User:
    from accounts import pipeline

    return User.objects.select_related(*pipeline.user_related()).get(email=email)


def test_prepared_user_lookup_builds_what_the_orm_builds() -> None:
    from mfa.models import MFAState
    from risk.models import RiskProfile

    plain = _user()
    with_rows = _user(phone="+447700900123")
    RiskProfile.objects.create(user=with_rows, seen_countries=["GB"], allowed_countries=["GB", "FR"])
    MFAState.objects.create(user=with_rows, preferred_method="totp")
    for user in (plain, with_rows, plain):  # a second run of the compiled statement with other values
        prepared = user_for_login(user.email)
        expected = _orm_user(user.email)
        assert prepared is not None
        assert [getattr(prepared, f.attname) for f in User._meta.concrete_fields] == [
            getattr(expected, f.attname) for f in User._meta.concrete_fields
        ]
        assert prepared.check_password(DEFAULT_PASSWORD)
        for name in ("risk_profile", "mfa_state"):
            # Loaded with the row (no query), None when absent, as select_related leaves them.
            assert name in prepared._state.fields_cache
            mine, theirs = prepared._state.fields_cache[name], expected._state.fields_cache[name]
            assert (mine is None) == (theirs is None)
            if mine is not None:
                assert [getattr(mine, f.attname) for f in type(mine)._meta.concrete_fields] == [
                    getattr(theirs, f.attname) for f in type(theirs)._meta.concrete_fields
                ]
                assert mine.user is prepared  # the reverse side points at the same object
    profile = user_for_login(with_rows.email).risk_profile  # type: ignore[union-attr]
    assert profile.seen_countries == ["GB"] and profile.allowed_countries == ["GB", "FR"]  # JSON decoded
    assert user_for_login("nobody@example.com") is None


@pytest.mark.django_db(transaction=True)
def test_prepared_locking_read_refuses_outside_a_transaction() -> None:
    user = _user()
    locking: PreparedSelect[User] = PreparedSelect(
        lambda email: User.objects.select_for_update().filter(email=email)[:1], "\x00sample"
    )
    with pytest.raises(TransactionManagementError):
        locking.first(user.email)  # before the first compilation
    with transaction.atomic():
        assert locking.first(user.email) == user
    with pytest.raises(TransactionManagementError):
        locking.first(user.email)  # compiled already


def test_a_sample_must_appear_once_among_the_parameters() -> None:
    twice: PreparedSelect[User] = PreparedSelect(
        lambda email: User.objects.filter(email=email, full_name=email)[:1], "\x00sample"
    )
    with pytest.raises(ImproperlyConfigured):
        twice.first("a@example.com")
    with pytest.raises(TypeError):
        PreparedSelect(lambda email: User.objects.filter(email=email)[:1], "\x00sample").first()


def test_rows_of_several_models_and_their_events_are_one_statement() -> None:
    user = _user()
    now = timezone.now()
    family = UserSession(user=user, kind=UserSession.Kind.MOBILE, amr=["pwd"], ip="198.51.100.7")
    token = RefreshToken(
        family=family, user=user, token_hash=uuid.uuid4().hex, created_at=now, expires_at=now + timedelta(days=1)
    )
    events = [
        event(type=EventType.LOGIN_SUCCEEDED, user=user, details={"sid": str(family.id), "amr": ["pwd"]}),
        event(type=EventType.TOKEN_ISSUED, user=user, details={"sid": str(family.id)}),
    ]
    with CaptureQueriesContext(connection) as queries:
        record_many(events, rows=[family, token])
    assert len([q for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]) == 1
    assert not family._state.adding and not token._state.adding
    stored = UserSession.objects.get(pk=family.pk)
    assert stored.amr == ["pwd"] and stored.ip == "198.51.100.7" and stored.dpop_jkt == ""
    assert RefreshToken.objects.get(pk=token.pk).family_id == family.pk
    assert list(AuditEvent.objects.filter(user=user).order_by("id").values_list("type", "details")) == [
        (EventType.LOGIN_SUCCEEDED, {"sid": str(family.id), "amr": ["pwd"]}),
        (EventType.TOKEN_ISSUED, {"sid": str(family.id)}),
    ]


def test_rows_written_together_roll_back_together() -> None:
    user = _user()
    family = UserSession(user=user, kind=UserSession.Kind.MOBILE)
    with pytest.raises(RuntimeError), transaction.atomic():
        record_many([event(type=EventType.LOGIN_SUCCEEDED, user=user)], rows=[family])
        raise RuntimeError("the action failed after its write")
    assert not UserSession.objects.filter(pk=family.pk).exists()
    assert not AuditEvent.objects.filter(user=user).exists()


def test_secrets_in_details_are_refused_before_anything_is_written() -> None:
    user = _user()
    with pytest.raises(ValueError):
        event(type=EventType.LOGIN_SUCCEEDED, user=user, details={"refresh": "x"})
    with pytest.raises(ValueError):
        record_many([])
    with pytest.raises(ValueError):
        insert_rows([])
    saved = _user()
    with pytest.raises(ValueError):
        insert_rows([saved])  # not a new row


def test_update_sql_prepares_values_as_the_orm_does() -> None:
    from risk.models import RiskProfile

    user = _user()
    RiskProfile.objects.create(user=user)
    sql, params = update_sql(RiskProfile, {"seen_countries": ["DE"], "last_login_ip": "192.0.2.1"}, pk=user.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    profile = RiskProfile.objects.get(pk=user.pk)
    assert profile.seen_countries == ["DE"] and profile.last_login_ip == "192.0.2.1"
    with pytest.raises(ValueError):
        update_sql(User, {"user_sessions": 1}, pk=user.pk)
    with pytest.raises(ValueError):
        update_sql(RiskProfile, {}, pk=user.pk)


@pytest.mark.parametrize("channel", ["web", "api"])
def test_every_login_stamps_last_login(channel: str, time_machine: Any) -> None:
    user = _user()
    assert user.last_login is None
    time_machine.move_to(timezone.now(), tick=False)
    client = Client(REMOTE_ADDR="203.0.113.10")
    if channel == "web":
        response = client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
        assert response.status_code == 302
    else:
        response = client.post(
            "/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}, content_type="application/json"
        )
        assert response.status_code == 200
    user.refresh_from_db()
    assert user.last_login == timezone.now()


def test_a_successful_login_clears_the_lockout_counter_and_its_stamps(settings: Any) -> None:
    from axes.helpers import get_client_cache_keys
    from axes.models import AccessAttempt
    from django.core.cache import cache

    settings.CAPTCHA_AFTER_FAILURES = 100  # the lockout alone
    settings.MFA_PROMPT_CUSTOMERS = False
    user = _user()
    keys = list(get_client_cache_keys(AccessAttempt(username=user.email, ip_address="203.0.113.10")))
    stored = [*keys, *(f"{key}:at" for key in keys)]
    client = Client(REMOTE_ADDR="203.0.113.10")
    for _ in range(4):  # one short of the lockout
        client.post("/accounts/login/", {"email": user.email, "password": "wrong password 123"})
    assert all(value is not None for value in cache.get_many(stored).values()) and cache.get_many(stored)
    done = client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/", done.get("Location")
    assert cache.get_many(stored) == {}
    # Counted from zero again: four more failures do not lock; then the fifth does.
    other = Client(REMOTE_ADDR="203.0.113.10")
    for _ in range(4):
        other.post("/accounts/login/", {"email": user.email, "password": "wrong password 123"})
    assert other.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 302
    for _ in range(5):
        other.post("/accounts/login/", {"email": user.email, "password": "wrong password 123"})
    assert other.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 429


def test_the_login_rate_limit_counts_on_django_ratelimits_own_counter(settings: Any) -> None:
    """accounts.security.rate_limited pipelines SET NX + INCR on the key django-ratelimit uses:
    the same count, the same refusal past the limit, and other callers of the library share it."""
    from django.test import RequestFactory
    from django_ratelimit.core import get_usage

    from accounts import security
    from core.net import client_ip

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_ip": "3/m"}
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="198.51.100.23")
    assert [security.rate_limited(request, name="login_ip") for _ in range(5)] == [False] * 3 + [True] * 2
    usage = get_usage(request, group="bp:login_ip", key=lambda _g, req: client_ip(req), rate="3/m", increment=False)
    assert usage is not None and usage["count"] == 5 and usage["should_limit"]
    elsewhere = RequestFactory().post("/accounts/login/", REMOTE_ADDR="198.51.100.24")
    assert security.rate_limited(elsewhere, name="login_ip") is False  # per IP
