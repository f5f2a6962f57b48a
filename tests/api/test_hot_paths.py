"""Issue 15: the bearer read and the refresh, what they cost, and the caches that make them cheap.

A warm GET /api/v1/me runs no SQL statement (the token, the live sid, the user row and the factor
fields all come from Redis); each cache is stale at once when what it holds changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from mfa.models import EmailFactor, MFAState, TOTPFactor
from tests.api.conftest import assert_error
from tests.api.helpers import bearer, issue_tokens


def _me(api: Any, tokens: dict[str, Any]) -> Any:
    return api.get("/api/v1/me", **bearer(tokens))


def test_a_warm_me_runs_no_sql_statement(api, user, add_totp):
    add_totp(user)
    tokens = issue_tokens(user)
    assert _me(api, tokens).status_code == 200  # fills the caches
    with CaptureQueriesContext(connection) as queries:
        response = _me(api, tokens)
    assert response.status_code == 200
    assert response.json()["mfa_methods"] == ["totp"]
    assert [q["sql"] for q in queries.captured_queries] == []


def test_a_warm_accounts_list_runs_no_sql_statement(api, user):
    tokens = issue_tokens(user)
    assert api.get("/api/v1/accounts", **bearer(tokens)).status_code == 200  # fills the owner's list (payments.cache)
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/accounts", **bearer(tokens)).status_code == 200
    assert [q["sql"] for q in queries.captured_queries] == []


def test_a_removed_factor_disappears_from_me_at_once(api, user, add_totp, add_email_factor):
    add_totp(user)
    email = add_email_factor(user)
    tokens = issue_tokens(user)
    assert _me(api, tokens).json()["mfa_methods"] == ["totp", "email"]
    assert _me(api, tokens).json()["mfa_methods"] == ["totp", "email"]  # warm
    EmailFactor.objects.filter(pk=email.pk).delete()
    assert _me(api, tokens).json()["mfa_methods"] == ["totp"]
    TOTPFactor.objects.filter(user=user).delete()
    assert _me(api, tokens).json() | {} == {
        "id": str(user.public_id),
        "email": user.email,
        "mfa_methods": [],
        "preferred_mfa_method": None,
    }


def test_an_added_factor_and_a_new_preference_show_at_once(api, user, add_totp, add_email_factor):
    add_email_factor(user)
    tokens = issue_tokens(user)
    assert _me(api, tokens).json()["mfa_methods"] == ["email"]
    add_totp(user)
    assert _me(api, tokens).json()["mfa_methods"] == ["totp", "email"]
    state, _ = MFAState.objects.get_or_create(user=user)
    state.preferred_method = "email"
    state.save(update_fields=["preferred_method"])
    assert _me(api, tokens).json()["preferred_mfa_method"] == "email"


def test_joining_a_policy_group_changes_the_allowed_factors_at_once(api, user, add_email_factor, settings):
    settings.MFA_REQUIRED_GROUPS = ["treasury"]
    add_email_factor(user)
    tokens = issue_tokens(user)
    assert _me(api, tokens).json()["mfa_methods"] == ["email"]
    group, _ = Group.objects.get_or_create(name="treasury")
    user.groups.add(group)
    assert _me(api, tokens).json()["mfa_methods"] == []  # strong factors only now
    group.user_set.remove(user)
    assert _me(api, tokens).json()["mfa_methods"] == ["email"]


def test_a_deactivated_user_is_refused_at_once_even_while_the_login_is_live(api, user):
    tokens = issue_tokens(user)
    assert _me(api, tokens).status_code == 200
    assert _me(api, tokens).status_code == 200  # warm
    user.is_active = False
    user.save(update_fields=["is_active"])  # e.g. the admin's change form: no session ended here
    assert_error(_me(api, tokens), 401, "token_not_valid")


def test_an_email_change_shows_at_once(api, user):
    tokens = issue_tokens(user)
    assert _me(api, tokens).json()["email"] == user.email
    user.email = "new.address@example.com"
    user.save(update_fields=["email"])
    assert _me(api, tokens).json()["email"] == "new.address@example.com"


def test_a_queryset_update_of_the_user_goes_through_user_changed(api, user):
    from accounts.usercache import user_changed

    tokens = issue_tokens(user)
    assert _me(api, tokens).json()["email"] == user.email
    User.objects.filter(pk=user.pk).update(email="updated@example.com")
    user_changed(user)
    assert _me(api, tokens).json()["email"] == "updated@example.com"


def test_a_read_that_raced_a_change_is_never_served(user):
    """The read-then-write race: a value read before a change committed carries the old generation."""
    from accounts import usercache

    _, generation = usercache._users.get(str(user.public_id))  # a reader starts, reads the old row ...
    stale = usercache.user_by_public_id(str(user.public_id))
    assert stale is not None
    user.email = "raced@example.com"
    user.save(update_fields=["email"])  # ... a change lands ...
    usercache._users.put(  # ... and the reader writes what it read, late
        str(user.public_id), generation, tuple(getattr(stale, n) for n in usercache._FIELDS)
    )
    fresh = usercache.user_by_public_id(str(user.public_id))
    assert fresh is not None and fresh.email == "raced@example.com"


def test_the_cached_user_row_holds_no_password_hash(api, user):
    tokens = issue_tokens(user)
    assert _me(api, tokens).status_code == 200
    from accounts import usercache

    raw = cache.get(f"c:{usercache._users.name}:{user.public_id}")
    assert raw is not None
    assert user.password not in repr(raw)


def test_a_revoked_login_is_refused_at_once_with_warm_caches(api, user):
    from accounts.api import services

    tokens = issue_tokens(user)
    assert _me(api, tokens).status_code == 200
    assert _me(api, tokens).status_code == 200
    services.logout(raw=tokens["refresh"])
    assert_error(_me(api, tokens), 401, "token_revoked")


@pytest.mark.django_db(transaction=True)
def test_refresh_costs_at_most_four_statements(api, user):
    tokens = issue_tokens(user)
    refresh = tokens["refresh"]
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            response = api.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")
        assert response.status_code == 200, response.content
        refresh = response.json()["refresh"]
        # Transaction control (BEGIN, COMMIT) aside: the locking read of token and family, the
        # successor's INSERT, one UPDATE of the spent token and the family, the audit row.
        sqls = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
        assert len(sqls) <= 4, sqls


def test_throttle_counts_every_request_and_refuses_past_the_limit(api, user, throttle_rate):
    throttle_rate("auth_user", "5/min")
    tokens = issue_tokens(user)
    statuses = [_me(api, tokens).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    response = _me(api, tokens)
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_api_answers_carry_a_strict_fixed_csp_and_no_session_cookie(api, user):
    tokens = issue_tokens(user)
    response = _me(api, tokens)
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert response["X-Frame-Options"] == "DENY"


# --- One Redis round trip per bearer request (core.cached.prefetch) ------------------------------


@pytest.fixture
def redis_round_trips(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts what redis-py sends (a command or a pipeline is one send) while the test runs."""
    import redis.connection

    sent = {"n": 0}
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/accounts"])
def test_a_warm_bearer_read_is_one_redis_round_trip(api, user, add_totp, redis_round_trips, path):
    add_totp(user)
    tokens = issue_tokens(user)
    first = api.get(path, **bearer(tokens))  # fills the caches; this process learns the user's pk
    assert first.status_code == 200
    redis_round_trips["n"] = 0
    again = api.get(path, **bearer(tokens))
    assert again.status_code == 200
    assert again.json() == first.json()
    # Throttle counter (on /me), revocation entries, user row and factor fields: one pipeline.
    assert redis_round_trips["n"] == 1


def test_a_request_refused_before_its_throttle_is_not_counted(api, user, throttle_rate):
    """The prefetch increments the throttle's counter with the token's reads; a request that then
    fails authentication never reached the throttle, so that increment is taken back."""
    from accounts.api import services

    throttle_rate("auth_user", "5/min")
    first = issue_tokens(user)
    assert [_me(api, first).status_code for _ in range(3)] == [200] * 3
    services.logout(raw=first["refresh"])
    assert [_me(api, first).status_code for _ in range(4)] == [401] * 4  # prefetched, taken back
    second = issue_tokens(user)
    assert [_me(api, second).status_code for _ in range(3)] == [200, 200, 429]


def test_a_throttled_request_is_refused_with_retry_after_on_the_prefetched_count(api, user, throttle_rate):
    throttle_rate("auth_user", "3/min")
    tokens = issue_tokens(user)
    assert [_me(api, tokens).status_code for _ in range(3)] == [200] * 3
    refused = _me(api, tokens)
    body = assert_error(refused, 429, "throttled")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert body["retry_after"] == int(refused["Retry-After"])


def test_prefetched_answers_do_not_outlive_their_request(user):
    """Outside a request nothing is prefetched; inside, an answer is used once."""
    from core import cached

    key = "hot-paths-test-key"
    cache.set(key, "v1")
    assert cached.prefetch([key]) is False  # no request: nothing kept
    with cached.request_scope():
        assert cached.prefetch([key]) is True
        cache.set(key, "v2")
        assert cached.read_many([key]) == {key: "v1"}  # the request's earlier read
        assert cached.read_many([key]) == {key: "v2"}  # used once: the next read asks Redis
    with cached.request_scope():
        assert cached.read_many([key]) == {key: "v2"}


def test_accounts_list_is_the_selectors_answer(api, user):
    """GET /api/v1/accounts runs the selector's compiled SQL: own, active customer accounts in
    opening order, money with two places."""
    from decimal import Decimal

    from payments import selectors, services
    from payments.models import BankAccount
    from tests.accounts.factories import UserFactory

    second = services.account_open(owner=user, currency="EUR", name="Savings", opening_balance=Decimal("12.5"))
    first = services.account_open(owner=user, currency="EUR", name="Current", opening_balance=Decimal("100"))
    BankAccount.objects.filter(pk=first.pk).update(created_at=second.created_at.replace(year=2020))
    closed = services.account_open(owner=user, currency="EUR", name="Closed")
    BankAccount.objects.filter(pk=closed.pk).update(is_active=False)
    services.account_open(owner=UserFactory.create(), currency="EUR", name="Someone else's")
    tokens = issue_tokens(user)
    for _ in range(2):  # compiled on first use, then reused
        response = api.get("/api/v1/accounts", **bearer(tokens))
        assert response.status_code == 200
        assert response.json() == [selectors.account_representation(a) for a in selectors.accounts_for_user(user=user)]
    assert [a["name"] for a in response.json()] == ["Current", "Savings"]
    assert [a["balance"] for a in response.json()] == ["100.00", "12.50"]


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        (None, ""),
        ("*/*", ""),
        ("application/json", ""),
        ("", ""),
        ("text/html", ""),
        ("application/json; indent=4", ""),
        ("application/*", ""),
        ("text/html, application/json;q=0.9", ""),
        (None, "format=json"),
        (None, "format=xml"),
        ("*/*", "x=1"),
    ],
)
def test_json_first_negotiation_answers_as_drf_does(accept, query):
    from django.http import Http404
    from django.test import RequestFactory
    from rest_framework.exceptions import NotAcceptable
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.request import Request

    from core.negotiation import JSONFirstNegotiation
    from core.renderers import ORJSONRenderer

    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(RequestFactory().get(f"/api/v1/me?{query}" if query else "/api/v1/me", **headers))
    answers: list[Any] = []
    for negotiation in (DefaultContentNegotiation(), JSONFirstNegotiation()):
        renderers = [ORJSONRenderer()]
        try:
            renderer, media_type = negotiation.select_renderer(request, renderers)
            answers.append((type(renderer), media_type))
        except NotAcceptable:
            answers.append("406")
        except Http404:  # ?format= naming no renderer
            answers.append("404")
    assert answers[0] == answers[1]


def test_an_unacceptable_accept_header_is_still_a_406(api, user):
    tokens = issue_tokens(user)
    assert_error(api.get("/api/v1/me", HTTP_ACCEPT="text/html", **bearer(tokens)), 406, "not_acceptable")


# --- Provider tokens (idp.authentication): the same cost as a mobile token ------------------------


def _provider_token(user: User) -> tuple[Any, str]:
    import base64

    from django.test import Client as DjangoClient

    from idp import services as idp_services

    client, secret = idp_services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    issued = DjangoClient(REMOTE_ADDR="198.51.100.7").post(
        "/o/token/",
        "grant_type=client_credentials&scope=read%3Aaccounts",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {basic}",
        secure=True,
    )
    assert issued.status_code == 200, issued.content
    return client, issued.json()["access_token"]


def test_a_provider_token_read_is_one_redis_round_trip_and_no_statement(api, user, redis_round_trips):
    _, token = _provider_token(user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    first = api.get("/api/v1/accounts", **auth)
    assert first.status_code == 200
    redis_round_trips["n"] = 0
    with CaptureQueriesContext(connection) as queries:
        again = api.get("/api/v1/accounts", **auth)
    assert again.status_code == 200 and again.json() == first.json()
    # The jti's revocation entry, the client's bound user, the user row and the account list: one pipeline.
    assert redis_round_trips["n"] == 1
    assert [q["sql"] for q in queries.captured_queries] == []


def test_a_warm_provider_token_is_refused_at_once_when_revoked_or_its_client_disabled(api, user):
    import jwt

    from idp import services as idp_services

    _, token = _provider_token(user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert [api.get("/api/v1/accounts", **auth).status_code for _ in range(2)] == [200, 200]  # warm memo
    idp_services.revoke_jtis([jwt.decode(token, options={"verify_signature": False})["jti"]], reason="revoked")
    assert_error(api.get("/api/v1/accounts", **auth), 401, "token_revoked")

    other_client, other = _provider_token(user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {other}"}
    assert [api.get("/api/v1/accounts", **auth).status_code for _ in range(2)] == [200, 200]
    other_client.is_active = False
    other_client.save()  # what the admin does
    assert_error(api.get("/api/v1/accounts", **auth), 401, "token_not_valid")


def test_a_memoised_provider_token_still_expires(api, user, time_machine):
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    _, token = _provider_token(user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert api.get("/api/v1/accounts", **auth).status_code == 200  # verified and memoised
    assert api.get("/api/v1/accounts", **auth).status_code == 200
    time_machine.move_to("2026-03-02 10:00:00+00:00", tick=False)
    assert_error(api.get("/api/v1/accounts", **auth), 401)


# --- The WSGI application (config.stack.buffered_wsgi) --------------------------------------------


def test_the_wsgi_application_hands_a_complete_response_over_as_one_bytes_object():
    import io
    import json

    from django.core.signals import request_finished
    from django.db import close_old_connections

    from config.wsgi import application

    finished: list[int] = []

    def on_finished(**kwargs: Any) -> None:
        finished.append(1)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/me",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.10",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    started: list[Any] = []
    # As Django's test client does: the test's transaction must not be closed by request_finished.
    request_finished.disconnect(close_old_connections)
    request_finished.connect(on_finished)
    try:
        body = application(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    finally:
        request_finished.disconnect(on_finished)
        request_finished.connect(close_old_connections)
    assert isinstance(body, list) and len(body) == 1 and isinstance(body[0], bytes)
    assert started[0][0].startswith("401")
    assert json.loads(body[0])["code"] == "not_authenticated"
    assert finished == [1]  # the response was closed, once, before the server got the body


def test_the_wsgi_application_passes_streaming_responses_through():
    from django.http import StreamingHttpResponse

    from config.stack import buffered_wsgi

    streaming = StreamingHttpResponse(iter([b"a", b"b"]))
    assert buffered_wsgi(lambda environ, start_response: streaming)({}, None) is streaming


def test_the_wsgi_application_drops_the_process_environment_from_the_request():
    """granian copies os.environ into every environ: the deployment's variables (DATABASE_URL, keys)
    must not reach request.META, while the request's own CGI names and headers do."""
    from django.http import JsonResponse

    from config.stack import buffered_wsgi

    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        seen.update(environ)
        return JsonResponse({"ok": True})

    process = {
        "DATABASE_URL": "postgres://portal:s3cret@db/portal",
        "DJANGO_SECRET_KEY": "not-for-requests",
        "HOME": "/home/portal",
        "PATH_INFO": "/from-the-process",
        "HTTP_PROXY": "http://proxy.internal:3128",
    }
    environ = {
        **process,
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/me",
        "HTTP_AUTHORIZATION": "Bearer x",
        "wsgi.url_scheme": "https",
    }
    body = buffered_wsgi(app, environment=process)(environ, lambda *a: None)
    assert body == [b'{"ok": true}']
    assert "DATABASE_URL" not in seen and "DJANGO_SECRET_KEY" not in seen and "HOME" not in seen
    # The request's own names stay, whatever the process environment holds under the same name.
    assert seen["PATH_INFO"] == "/api/v1/me"
    assert seen["REQUEST_METHOD"] == "GET" and seen["HTTP_AUTHORIZATION"] == "Bearer x"
    assert seen["wsgi.url_scheme"] == "https"
    # HTTP_* names are what a client may send: never dropped, whichever side set them.
    assert seen["HTTP_PROXY"] == "http://proxy.internal:3128"


def test_the_wsgi_entry_takes_the_process_environment_it_started_with() -> None:
    """By default the names dropped are this process's own environment (as granian copies it)."""
    import io
    import os

    from config.stack import buffered_wsgi, process_environment_keys

    assert "DATABASE_URL" in process_environment_keys(os.environ) or "DATABASE_URL" not in os.environ
    assert "DJANGO_SETTINGS_MODULE" in process_environment_keys(os.environ)

    seen: dict[str, Any] = {}
    wsgi = buffered_wsgi(lambda environ, start_response: seen.update(environ) or [b""])
    wsgi({**os.environ, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO(b"")}, None)
    assert "DJANGO_SETTINGS_MODULE" not in seen and seen["REQUEST_METHOD"] == "GET"
