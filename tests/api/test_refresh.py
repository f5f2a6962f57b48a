"""Refresh rotation: each refresh token works once; a spent one presented again ends the family."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.models import RefreshToken, UserSession
from audit.events import EventType
from tests.api.conftest import assert_error, events
from tests.api.helpers import APP_USER_AGENT, bearer, issue_tokens


def _refresh(api: APIClient, token: str) -> Any:
    return api.post("/api/v1/auth/token/refresh", {"refresh": token}, format="json")


def test_refresh_rotates_and_the_new_pair_works(api, user):
    first = issue_tokens(user)
    response = _refresh(api, first["refresh"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh"] != first["refresh"] and second["access"] != first["access"]
    assert api.get("/api/v1/me", **bearer(second)).status_code == 200
    old = RefreshToken.objects.get(family_id=first["sid"], used_at__isnull=False)
    assert old.replaced_by is not None and old.replaced_by.used_at is None
    [refreshed] = events(EventType.TOKEN_REFRESHED, user)
    assert refreshed.details == {"sid": first["sid"]}


def test_reuse_of_a_spent_token_revokes_the_whole_family_newest_included(api, user, run_outbox, outbox):
    first = issue_tokens(user)
    second = _refresh(api, first["refresh"]).json()
    third = _refresh(api, second["refresh"]).json()
    assert api.get("/api/v1/me", **bearer(third)).status_code == 200

    # The thief (or the victim) presents an already-used token.
    assert_error(_refresh(api, first["refresh"]), 401, "token_reused")

    # The newest refresh token and the newest access token are dead at once.
    assert_error(_refresh(api, third["refresh"]), 401, "token_revoked")
    assert_error(api.get("/api/v1/me", **bearer(third)), 401, "token_revoked")
    family = UserSession.objects.get(id=first["sid"])
    assert family.ended_at is not None and family.end_reason == "refresh_reuse"
    assert not RefreshToken.objects.filter(family=family, revoked_at__isnull=True).exists()

    [reuse] = events(EventType.TOKEN_REUSE_DETECTED, user)
    assert reuse.outcome == "denied" and reuse.details["sid"] == first["sid"] and reuse.details["was_live"] is True
    [ended] = events(EventType.SESSION_ENDED, user)
    assert ended.reason == "refresh_reuse"

    run_outbox()
    [mail] = [m for m in outbox if m.to == [user.email]]
    assert "signed out" in mail.subject
    # A second replay is audited again but does not email again.
    assert_error(_refresh(api, second["refresh"]), 401, "token_reused")
    assert len(events(EventType.TOKEN_REUSE_DETECTED, user)) == 2
    run_outbox()
    assert len([m for m in outbox if m.to == [user.email]]) == 1


def test_other_families_survive_a_reuse(api, user):
    victim = issue_tokens(user)
    other = issue_tokens(user)
    _refresh(api, victim["refresh"])
    _refresh(api, victim["refresh"])
    assert api.get("/api/v1/me", **bearer(other)).status_code == 200
    assert _refresh(api, other["refresh"]).status_code == 200


@pytest.mark.parametrize("token", ["", "x", "not-a-real-token" * 3, "A" * 200])
def test_unknown_refresh_tokens_are_401(api, token):
    response = _refresh(api, token)
    assert response.status_code in (400, 401)
    assert_error(response, response.status_code)


def test_refresh_token_too_long_is_400(api):
    assert_error(_refresh(api, "A" * 5000), 400, "invalid")


def test_refresh_token_expires_after_7_days(api, user, time_machine):
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    tokens = issue_tokens(user)
    time_machine.move_to("2026-03-09 09:00:01+00:00", tick=False)
    assert_error(_refresh(api, tokens["refresh"]), 401, "token_expired")


def test_refreshing_slides_but_never_beyond_the_absolute_limit(api, user, time_machine, settings):
    settings.JWT_REFRESH_ABSOLUTE_SECONDS = 10 * 24 * 3600
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    tokens = issue_tokens(user)
    time_machine.move_to("2026-03-08 09:00:00+00:00", tick=False)
    tokens = _refresh(api, tokens["refresh"]).json()  # day 6: slides
    time_machine.move_to("2026-03-11 09:00:00+00:00", tick=False)
    tokens = _refresh(api, tokens["refresh"]).json()  # day 9: beyond the first 7 days, still fine
    assert "refresh" in tokens
    time_machine.move_to("2026-03-12 09:00:01+00:00", tick=False)
    assert_error(_refresh(api, tokens["refresh"]), 401, "token_expired")  # 10 days after the login


def test_disabled_account_cannot_refresh(api, user):
    tokens = issue_tokens(user)
    user.is_active = False
    user.save()
    assert_error(_refresh(api, tokens["refresh"]), 401, "token_revoked")
    assert_error(api.get("/api/v1/me", **bearer(tokens)), 401)


@pytest.mark.django_db(transaction=True)
def test_two_threads_refreshing_one_token_exactly_one_succeeds(user):
    """Real threads, real PostgreSQL row locks: one rotation wins, the other is a reuse."""
    tokens = issue_tokens(user)
    barrier = threading.Barrier(2)
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            client = APIClient(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT=APP_USER_AGENT)
            barrier.wait(timeout=10)
            status = _refresh(client, tokens["refresh"]).status_code
            with lock:
                results.append(status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [200, 401]
    assert RefreshToken.objects.filter(family_id=tokens["sid"], used_at__isnull=False).count() == 1
    assert len(events(EventType.TOKEN_REFRESHED, user)) == 1
    connection.close()


def test_a_refresh_is_one_locking_read_and_one_write(api, user):
    """Issue 15: the lock of token and family, then the successor, the spent token, the family's
    last_seen_at and the audit row in one statement (data-modifying CTEs), besides BEGIN/COMMIT."""
    from django.test.utils import CaptureQueriesContext

    first = issue_tokens(user)
    with CaptureQueriesContext(connection) as queries:
        response = _refresh(api, first["refresh"])
    assert response.status_code == 200, response.content
    # Transaction control aside (BEGIN/COMMIT; SAVEPOINT/RELEASE inside the test's transaction).
    sqls = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    assert len(sqls) == 2, sqls
    assert "FOR UPDATE" in sqls[0]
    # Everything the separate statements did is there.
    spent = RefreshToken.objects.select_related("family", "replaced_by").get(
        family_id=first["sid"], used_at__isnull=False
    )
    assert spent.replaced_by is not None and spent.replaced_by.used_at is None
    assert spent.family.last_seen_at == spent.used_at
    assert spent.replaced_by.user_id == user.pk and spent.replaced_by.family_id == spent.family_id
    [refreshed] = events(EventType.TOKEN_REFRESHED, user)
    assert refreshed.details == {"sid": first["sid"]} and refreshed.ip == "203.0.113.10"


def test_a_failed_audit_write_leaves_the_token_unspent(api, user, monkeypatch):
    """The successor, the spend and the audit row are one statement: when it fails, none is written."""
    import audit.services

    first = issue_tokens(user)
    real = audit.services.insert_rows

    def failing(rows, **kwargs):
        real(rows, **kwargs)
        raise RuntimeError("the database went away mid-transaction")

    monkeypatch.setattr(audit.services, "insert_rows", failing)
    with pytest.raises(RuntimeError):
        _refresh(api, first["refresh"])
    monkeypatch.undo()
    assert RefreshToken.objects.filter(family_id=first["sid"]).count() == 1
    assert not RefreshToken.objects.filter(family_id=first["sid"], used_at__isnull=False).exists()
    assert events(EventType.TOKEN_REFRESHED, user) == []
    assert _refresh(api, first["refresh"]).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"refresh": ""},
        {"refresh": "   "},
        {"refresh": None},
        {"refresh": ["a"]},
        {"refresh": "x" * 201},
        {"refresh": "ab\x00cd"},
        [],
        "text",
    ],
)
def test_a_malformed_refresh_body_gets_the_serializers_own_400(api, body):
    """The view takes a well-formed token without building RefreshSerializer; anything else still
    gets exactly the serializer's answer (issue 15)."""
    from accounts.api.serializers import RefreshSerializer

    response = api.post("/api/v1/auth/token/refresh", body, format="json")
    assert_error(response, 400)
    expected = RefreshSerializer(data=body)
    assert not expected.is_valid()
    if isinstance(body, dict):
        assert response.json()["errors"] == {k: [str(m) for m in v] for k, v in expected.errors.items()}


def test_a_refresh_token_with_surrounding_spaces_is_trimmed_as_before(api, user):
    first = issue_tokens(user)
    assert _refresh(api, f"  {first['refresh']}\n").status_code == 200
