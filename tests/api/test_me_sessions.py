"""GET /me, GET /sessions (web and mobile together), DELETE /sessions/{id}."""

from __future__ import annotations

import uuid
from typing import cast

import pytest

from accounts.models import User, UserSession
from audit.events import EventType
from tests.accounts.factories import UserFactory
from tests.api.conftest import assert_error, events
from tests.api.helpers import bearer, issue_tokens


def _user() -> User:
    return cast(User, UserFactory())


def test_me(api, user, add_totp):
    add_totp(user)
    tokens = issue_tokens(user)
    body = api.get("/api/v1/me", **bearer(tokens)).json()
    assert body == {
        "id": str(user.public_id),
        "email": user.email,
        "mfa_methods": ["totp"],
        "preferred_mfa_method": "totp",
    }


def test_sessions_lists_web_and_mobile_with_current(api, user, make_client, password):
    web = make_client()
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    other = issue_tokens(user)
    mine = issue_tokens(user)
    rows = api.get("/api/v1/sessions", **bearer(mine)).json()
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) >= {mine["sid"], other["sid"]}
    assert {row["kind"] for row in rows} == {"web", "mobile"}
    assert by_id[mine["sid"]]["current"] is True and by_id[other["sid"]]["current"] is False
    assert sum(row["current"] for row in rows) == 1
    row = by_id[mine["sid"]]
    assert set(row) == {"id", "kind", "device_name", "ip", "country", "created_at", "last_seen_at", "current"}
    assert row["ip"] == "203.0.113.10" and row["created_at"].endswith("Z")


def test_sessions_lists_only_live_ones_of_this_user(api, user):
    stranger = issue_tokens(_user())
    ended = issue_tokens(user)
    api.post("/api/v1/auth/logout", {"refresh": ended["refresh"]}, format="json")
    mine = issue_tokens(user)
    ids = {row["id"] for row in api.get("/api/v1/sessions", **bearer(mine)).json()}
    assert ids == {mine["sid"]}
    assert stranger["sid"] not in ids


def test_delete_a_session_ends_it_at_once(api, user):
    phone, tablet = issue_tokens(user), issue_tokens(user)
    response = api.delete(f"/api/v1/sessions/{phone['sid']}", **bearer(tablet))
    assert response.status_code == 204
    assert_error(api.get("/api/v1/me", **bearer(phone)), 401, "token_revoked")
    assert_error(
        api.post("/api/v1/auth/token/refresh", {"refresh": phone["refresh"]}, format="json"), 401, "token_revoked"
    )
    assert api.get("/api/v1/me", **bearer(tablet)).status_code == 200
    assert UserSession.objects.get(id=phone["sid"]).end_reason == "ended_by_user"
    [revoked] = events(EventType.TOKEN_REVOKED, user)
    assert revoked.reason == "ended_by_user" and revoked.details["sid"] == phone["sid"]


def test_delete_a_web_session(api, user, make_client, password):
    web = make_client()
    web.post("/accounts/login/", {"email": user.email, "password": password})
    web_session = UserSession.objects.get(user=user, kind="web")
    tokens = issue_tokens(user)
    assert api.delete(f"/api/v1/sessions/{web_session.id}", **bearer(tokens)).status_code == 204
    assert web.get("/").status_code == 302  # logged out on the web


@pytest.mark.parametrize("which", ["someone_elses", "unknown", "not_a_uuid", "already_ended"])
def test_delete_someone_elses_or_unknown_session_is_404(api, user, which):
    tokens = issue_tokens(user)
    if which == "someone_elses":
        target = issue_tokens(_user())["sid"]
    elif which == "unknown":
        target = str(uuid.uuid4())
    elif which == "not_a_uuid":
        target = "1 OR 1=1"
    else:
        gone = issue_tokens(user)
        api.post("/api/v1/auth/logout", {"refresh": gone["refresh"]}, format="json")
        target = gone["sid"]
    assert_error(api.delete(f"/api/v1/sessions/{target}", **bearer(tokens)), 404, "not_found")
    if which == "someone_elses":
        assert UserSession.objects.get(id=target).ended_at is None


def test_me_and_sessions_need_a_token(api):
    assert_error(api.get("/api/v1/me"), 401, "not_authenticated")
    assert_error(api.get("/api/v1/sessions"), 401, "not_authenticated")
    assert_error(api.delete(f"/api/v1/sessions/{uuid.uuid4()}"), 401, "not_authenticated")


def test_no_cookies_on_the_api(api, user, api_login):
    response = api_login(user)
    assert response.status_code == 200 and not response.cookies
    me = api.get("/api/v1/me", **bearer(response.json()))
    assert me.status_code == 200 and not me.cookies
    assert me["Cache-Control"] == "no-store"


def test_app_login_idle_past_the_refresh_lifetime_is_not_listed(api, user, time_machine):
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    stale = issue_tokens(user)
    time_machine.move_to("2026-03-09 10:00:00+00:00", tick=False)
    fresh = issue_tokens(user)
    ids = {row["id"] for row in api.get("/api/v1/sessions", **bearer(fresh)).json()}
    assert ids == {fresh["sid"]}
    assert stale["sid"] not in ids
