"""What a token request costs, and that nothing it checks got weaker on the way (issue 15).

The authorization-code exchange reads the grant once (with its user) and the client from
idp.clientcache, then writes in one transaction of two statements: the grant's deletion with
the new rows' ids, then the ID, access and refresh tokens, the consent's last use and the audit
event. A client-credentials token with a warm client is one statement (its row and its audit
event). A disabled client, a rotated secret and a lost Redis are seen at once.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import jwt as pyjwt
import pytest
import redis
import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client as DjangoClient
from django.test.utils import CaptureQueriesContext

from accounts.models import User, UserSession
from audit.models import AuditEvent
from core.cached import generation_key
from idp import clientcache, services
from idp.models import AccessToken, Client, Consent, Grant, IDToken, RefreshToken
from idp.validator import Validator
from tests.idp.conftest import RP_CALLBACK, authorize, query, rp_session

pytestmark = pytest.mark.django_db


def _statements(captured: CaptureQueriesContext) -> list[str]:
    skip = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT", "ROLLBACK")
    return [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(skip)]


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _code(
    browser: DjangoClient, client: Client, secret: str, http: requests.Session, discovery: Any
) -> tuple[str, str]:
    rp = rp_session(client, secret, http, scope="openid email offline_access read:accounts")
    response, _state, verifier, _nonce = authorize(browser, rp, discovery)
    return query(response["Location"])["code"], verifier


def _exchange(api: DjangoClient, client: Client, secret: str, code: str, verifier: str) -> Any:
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": RP_CALLBACK, "code_verifier": verifier}
    return api.post(
        "/o/token/",
        urlencode(body),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=_basic(client.client_id, secret),
        secure=True,
    )


def _client_credentials(api: DjangoClient, client_id: str, secret: str) -> Any:
    return api.post(
        "/o/token/",
        "grant_type=client_credentials&scope=read%3Aaccounts",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=_basic(client_id, secret),
        secure=True,
    )


def _uncached_conversions(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The queries psycopg converts without its cache from now on (too long, or too many parameters)."""
    from psycopg import _queries

    seen: list[bytes] = []
    convert = _queries._query2pg_client_nocache

    def spy(query: bytes, encoding: str) -> Any:
        seen.append(query)
        return convert(query, encoding)

    monkeypatch.setattr(_queries, "_query2pg_client_nocache", spy)
    return seen


def test_a_code_exchange_reads_the_grant_once_and_writes_each_row_once(
    browser: DjangoClient,
    user: User,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, secret = make_oidc_client()
    code, verifier = _code(browser, client, secret, http, discovery)
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    unconverted = _uncached_conversions(monkeypatch)
    with CaptureQueriesContext(connection) as captured:
        response = _exchange(api, client, secret, code, verifier)
    assert response.status_code == 200, response.content
    tokens = response.json()
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["id_token"]
    sql = _statements(captured)
    assert len(sql) == 3, sql
    select, spend, write = sql
    # The grant, its user and its client (the row the exchange authenticates: no idp.clientcache read).
    assert select.startswith("SELECT") and '"idp_grant"' in select and '"accounts_user"' in select
    assert f'"{Client._meta.db_table}"' in select
    # The grant's deletion, the consent's last use and the ids of the new rows.
    assert spend.startswith('WITH spent AS (DELETE FROM "idp_grant"') and spend.count("nextval(") == 2
    assert 'UPDATE "idp_consent"' in spend
    # One statement: the ID, access and refresh tokens, the audit event.
    for part in ('INSERT INTO "idp_idtoken"', 'INSERT INTO "idp_accesstoken"', 'INSERT INTO "idp_refreshtoken"'):
        assert part in write
    assert 'INSERT INTO "audit_auditevent"' in write and "UPDATE" not in write
    # Each statement is within psycopg's cache of converted queries (at most 50 parameters, 4096
    # characters): one past it is parsed again on every request (it was ~10 % of an exchange).
    assert unconverted == [], [q[:120] for q in unconverted]

    # What those rows hold: the login the grant carried, the ID token the access token belongs to.
    live = UserSession.objects.get(user=user, ended_at__isnull=True)
    access = AccessToken.objects.get(application=client)
    id_token = IDToken.objects.get(application=client)
    refresh = RefreshToken.objects.get(application=client)
    assert access.id_token_id == id_token.pk and access.sid == id_token.sid == refresh.sid == str(live.id)
    assert refresh.access_token_id == access.pk and refresh.amr == ["pwd"] and refresh.auth_time is not None
    assert not Grant.objects.filter(application=client).exists()
    assert Consent.objects.get(user=user, client=client).last_used_at is not None
    assert AuditEvent.objects.filter(type="oauth.token_issued", details__client_id=client.client_id).count() == 1


def test_a_failed_exchange_writes_nothing_and_keeps_the_code(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    code, verifier = _code(browser, client, secret, http, discovery)
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    refused = _exchange(api, client, secret, code, "x" * 50)  # wrong PKCE verifier
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    wrong_uri = api.post(
        "/o/token/",
        urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": "https://rp.example/other/"})
        + f"&code_verifier={verifier}",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=_basic(client.client_id, secret),
        secure=True,
    )
    assert wrong_uri.status_code == 400
    other, other_secret = make_oidc_client(name="Another app")
    assert _exchange(api, other, other_secret, code, verifier).status_code == 400  # another client's code
    assert not AccessToken.objects.exists() and not IDToken.objects.exists() and not RefreshToken.objects.exists()
    assert Grant.objects.filter(application=client).count() == 1
    assert _exchange(api, client, secret, code, verifier).status_code == 200  # still usable, once


def test_a_code_spent_by_another_request_meanwhile_issues_nothing(
    browser: DjangoClient,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two exchanges of one code at once: the second passes the checks before the first deletes
    the grant. Its deletion (inside its token transaction) then finds nothing: no token is written."""
    client, secret = make_oidc_client()
    code, verifier = _code(browser, client, secret, http, discovery)
    checked = Validator.validate_code

    def validate_then_lose_the_race(self: Validator, *args: Any, **kwargs: Any) -> bool:
        ok = checked(self, *args, **kwargs)
        Grant.objects.filter(code=code).delete()  # the other exchange's deletion, committed
        return ok

    monkeypatch.setattr(Validator, "validate_code", validate_then_lose_the_race)
    response = _exchange(DjangoClient(REMOTE_ADDR="198.51.100.7"), client, secret, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert response["Cache-Control"] == "no-store"
    assert not AccessToken.objects.exists() and not IDToken.objects.exists() and not RefreshToken.objects.exists()
    assert not AuditEvent.objects.filter(type="oauth.token_issued").exists()


def test_a_concurrent_second_exchange_of_a_code_revokes_what_the_first_issued(
    browser: DjangoClient,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 6749 4.1.2: a code presented twice revokes the tokens it gave, also when the two
    exchanges run at once. The second passes its checks while the grant is still there; the first
    then completes (it lists its tokens under the code before it commits); the second's deletion
    finds nothing, so it issues nothing and revokes what the first issued."""
    client, secret = make_oidc_client()
    code, verifier = _code(browser, client, secret, http, discovery)
    checked = Validator.validate_code
    first: dict[str, Any] = {}

    def validate_then_let_the_other_exchange_finish(self: Validator, *args: Any, **kwargs: Any) -> bool:
        ok = checked(self, *args, **kwargs)
        if not first:
            first["response"] = None
            first["response"] = _exchange(DjangoClient(REMOTE_ADDR="203.0.113.9"), client, secret, code, verifier)
        return ok

    monkeypatch.setattr(Validator, "validate_code", validate_then_let_the_other_exchange_finish)
    second = _exchange(DjangoClient(REMOTE_ADDR="198.51.100.7"), client, secret, code, verifier)
    assert first["response"].status_code == 200, first["response"].content
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert second["Cache-Control"] == "no-store"
    issued = first["response"].json()
    access_jti = pyjwt.decode(issued["access_token"], options={"verify_signature": False})["jti"]
    # What the first exchange issued no longer works: its access token's jti is listed (and its
    # row gone), its refresh token's family is revoked, and the reuse is in the audit trail.
    assert services.token_revoked_reason(jti=access_jti, sid="") == "code_reused"
    assert not AccessToken.objects.filter(jti=access_jti).exists()
    refresh = RefreshToken.objects.get(application=client)
    assert refresh.revoked is not None
    assert AuditEvent.objects.filter(type="oauth.token_issued", details__client_id=client.client_id).count() == 1
    assert AuditEvent.objects.filter(type="oauth.code_reuse_detected", details__client_id=client.client_id).count() == 1
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    renewed = api.post(
        "/o/token/",
        urlencode({"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=_basic(client.client_id, secret),
        secure=True,
    )
    assert renewed.status_code == 400 and renewed.json()["error"] == "invalid_grant"


def test_a_code_exchange_authenticates_the_client_as_it_is_now(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    """The exchange uses the client row its grant's read brought (not idp.clientcache): a secret
    rotated or a client disabled after the code was issued counts for the exchange."""
    client, secret = make_oidc_client()
    code, verifier = _code(browser, client, secret, http, discovery)
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    clientcache.client_by_id(client.client_id)  # a warm cached row, from before the rotation
    new_secret = services.client_secret_rotate(client=client)
    refused = _exchange(api, client, secret, code, verifier)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    Client.objects.filter(pk=client.pk).update(is_active=False)  # no receiver sees this one
    refused = _exchange(api, client, new_secret, code, verifier)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    Client.objects.filter(pk=client.pk).update(is_active=True)
    other, other_secret = make_oidc_client(name="Another app")
    assert _exchange(api, other, other_secret, code, verifier).status_code == 400  # not its code
    assert _exchange(api, client, new_secret, code, verifier).status_code == 200
    assert not AccessToken.objects.filter(application=other).exists()


def test_a_client_credentials_token_with_a_warm_client_costs_one_statement(user: User) -> None:
    client, secret = services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    assert _client_credentials(api, client.client_id, secret).status_code == 200  # warms the client
    with CaptureQueriesContext(connection) as captured:
        response = _client_credentials(api, client.client_id, secret)
    assert response.status_code == 200 and response.json()["access_token"]
    (write,) = _statements(captured)  # no SELECT of the client: idp.clientcache
    assert 'INSERT INTO "idp_accesstoken"' in write and 'INSERT INTO "audit_auditevent"' in write


def test_a_disabled_client_and_a_rotated_secret_count_at_once_with_a_warm_cache(user: User) -> None:
    client, secret = services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    assert _client_credentials(api, client.client_id, secret).status_code == 200

    new_secret = services.client_secret_rotate(client=client)
    assert _client_credentials(api, client.client_id, secret).status_code == 401  # the old one, at once
    assert _client_credentials(api, client.client_id, new_secret).status_code == 200

    client.refresh_from_db()
    client.is_active = False
    client.save()  # what the admin does
    refused = _client_credentials(api, client.client_id, new_secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_a_cached_client_row_is_read_again_after_redis_lost_its_generation(user: User) -> None:
    client, secret = services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    assert _client_credentials(api, client.client_id, secret).status_code == 200
    # A change that no receiver saw, then Redis loses the client's generation: the row this
    # process kept is not used again (a new random generation is written before the next read).
    Client.objects.filter(pk=client.pk).update(is_active=False)
    cache.delete(generation_key(clientcache.GROUP, client.client_id))
    assert _client_credentials(api, client.client_id, secret).status_code == 401
    assert cache.get(generation_key(clientcache.GROUP, client.client_id))


def test_the_client_cache_hands_out_separate_objects_and_refuses_impossible_ids(user: User) -> None:
    client, _secret = services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    first = clientcache.client_by_id(client.client_id)
    second = clientcache.client_by_id(client.client_id)
    assert first is not None and second is not None and first is not second and first.pk == client.pk
    assert first.client_secret == Client.objects.get(pk=client.pk).client_secret  # hashed, as stored
    first.name = "changed in one request"
    assert clientcache.client_by_id(client.client_id).name == "Ledger sync"  # type: ignore[union-attr]
    for impossible in ("", "a\x00b", "x" * 300, None, 42):
        assert clientcache.client_by_id(impossible) is None
    assert clientcache.client_by_id("no-such-client") is None
    # The row (with the secret's hash) stays in this process: nothing of it is written to Redis.
    raw = redis.Redis.from_url(settings.REDIS_URL)
    stored = [raw.dump(key) or b"" for key in raw.scan_iter(count=1000)]
    assert not any(first.client_secret.encode() in value for value in stored)


def test_the_token_endpoint_runs_the_lean_stack_and_the_pages_keep_theirs(user: User, client: DjangoClient) -> None:
    """/o/token/ is called with client credentials, never cookies: no session is loaded or set, and it gets the
    strict JSON policy (config.stack); the authorization page still runs the whole web stack."""
    from config.stack import API_CSP

    made, secret = services.client_create(
        name="Ledger sync", kind="confidential", grant="client-credentials", scopes="read:accounts", owner=user
    )
    api = DjangoClient(REMOTE_ADDR="198.51.100.7")
    response = _client_credentials(api, made.client_id, secret)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == API_CSP
    assert not response.cookies
    assert not hasattr(response.wsgi_request, "session") and not hasattr(response.wsgi_request, "user")
    refused = api.post("/o/token/", "grant_type=client_credentials", content_type="application/x-www-form-urlencoded")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    page = client.get("/o/authorize/?client_id=" + made.client_id, secure=True)
    assert hasattr(page.wsgi_request, "session") and page["Content-Security-Policy"] != API_CSP


def test_a_web_login_that_used_no_client_ends_with_one_provider_query(user: User) -> None:
    """Most web logins never sign in to a client: ending one asks the provider once (no revocation, no
    back-channel work); a login that did use one still has its tokens revoked and its clients told
    (tests/idp/test_logout.py)."""
    from accounts.services import session_end

    login = UserSession.objects.create(user=user, kind=UserSession.Kind.WEB, ip="198.51.100.7")
    with CaptureQueriesContext(connection) as captured:
        assert session_end(user_session=login, reason="logout")
    provider = [q for q in _statements(captured) if '"idp_' in q]
    assert len(provider) == 1 and "UNION" in provider[0]
    assert not AuditEvent.objects.filter(type="oidc.backchannel_logout_queued").exists()
