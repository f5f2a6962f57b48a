"""Revocation is immediate: the access token of an ended login is refused on its next request,
checked in Redis by `sid` without a database query."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.test import Client

from accounts import revocation
from accounts import services as account_services
from accounts.models import User, UserSession
from audit.events import EventType
from tests.accounts.factories import UserFactory
from tests.api.conftest import assert_error, events
from tests.api.helpers import bearer, issue_tokens


def _logout(api: Any, refresh: str) -> Any:
    return api.post("/api/v1/auth/logout", {"refresh": refresh}, format="json")


def test_logout_stops_the_access_token_on_the_next_request(api, user):
    tokens = issue_tokens(user)
    assert api.get("/api/v1/me", **bearer(tokens)).status_code == 200
    response = _logout(api, tokens["refresh"])
    assert response.status_code == 204 and response.content == b""
    assert_error(api.get("/api/v1/me", **bearer(tokens)), 401, "token_revoked")
    assert_error(
        api.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"), 401, "token_revoked"
    )

    family = UserSession.objects.get(id=tokens["sid"])
    assert family.ended_at is not None and family.end_reason == "logout"
    [logout] = events(EventType.LOGOUT, user)
    assert logout.details == {"sid": tokens["sid"], "kind": "mobile"}
    [revoked] = events(EventType.TOKEN_REVOKED, user)
    assert revoked.reason == "logout" and revoked.details["sid"] == tokens["sid"]
    assert events(EventType.SESSION_ENDED, user)[0].reason == "logout"


def test_logout_twice_is_harmless_and_bad_tokens_are_401(api, user):
    tokens = issue_tokens(user)
    assert _logout(api, tokens["refresh"]).status_code == 204
    assert _logout(api, tokens["refresh"]).status_code == 204
    assert len(events(EventType.LOGOUT, user)) == 1
    assert_error(_logout(api, "nope"), 401, "token_not_valid")
    assert_error(api.post("/api/v1/auth/logout", {}, format="json"), 400, "invalid")


def test_logout_ends_only_that_login(api, user):
    phone, tablet = issue_tokens(user), issue_tokens(user)
    _logout(api, phone["refresh"])
    assert api.get("/api/v1/me", **bearer(tablet)).status_code == 200


def test_revoked_sid_is_refused_without_a_database_query(api, user, django_assert_num_queries):
    tokens = issue_tokens(user)
    revocation.revoke(tokens["sid"], reason="test")
    with django_assert_num_queries(0):
        assert_error(api.get("/api/v1/me", **bearer(tokens)), 401, "token_revoked")


def test_a_live_request_costs_one_indexed_user_lookup(api, user, django_assert_max_num_queries):
    tokens = issue_tokens(user)
    api.get("/api/v1/sessions", **bearer(tokens))  # the first request also records last_seen_at
    # Authentication itself is one query (the user by sub); the revocation check is Redis only.
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from accounts.api.authentication import JWTAuthentication

    request = Request(APIRequestFactory().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"))
    with django_assert_max_num_queries(1):
        result = JWTAuthentication().authenticate(request)
    assert result is not None and result[0].pk == user.pk


def test_password_change_on_the_web_stops_every_family(user, password, api, make_client):
    phone, tablet = issue_tokens(user), issue_tokens(user)
    web: Client = make_client()
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    new = "another strong passphrase"
    response = web.post(
        "/accounts/password/change/", {"old_password": password, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    for tokens in (phone, tablet):
        assert_error(api.get("/api/v1/me", **bearer(tokens)), 401, "token_revoked")
        assert_error(
            api.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"), 401, "token_revoked"
        )
    ended = [e for e in events(EventType.SESSION_ENDED, user) if e.reason == "password_changed"]
    assert {e.details["sid"] for e in ended} >= {phone["sid"], tablet["sid"]}


def test_password_reset_stops_every_family(api, user):
    tokens = issue_tokens(user)
    account_services.password_reset_complete(user=user, new_password="a fresh long passphrase 42")
    assert_error(api.get("/api/v1/me", **bearer(tokens)), 401, "token_revoked")


def test_staff_end_all_sessions_stops_the_tokens(api, user):
    tokens = issue_tokens(user)
    staff = cast(User, UserFactory(is_staff=True))
    account_services.sessions_end_all(user=user, reason="staff", actor=staff)
    assert_error(api.get("/api/v1/me", **bearer(tokens)), 401, "token_revoked")


def test_disabled_account_is_refused_at_once(api, user):
    tokens = issue_tokens(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_error(api.get("/api/v1/me", **bearer(tokens)), 401, "token_not_valid")


def test_token_of_an_unknown_user_is_refused(api, user):
    import uuid

    tokens = issue_tokens(user)
    from accounts.tokens import access_token_issue

    ghost, _ = access_token_issue(user_public_id=str(uuid.uuid4()), sid=tokens["sid"], amr=["pwd"])
    assert_error(api.get("/api/v1/me", **bearer(ghost)), 401, "token_not_valid")


@pytest.mark.parametrize("reason", ["not_me", "session_limit"])
def test_any_ended_login_is_refused(api, user, reason):
    tokens = issue_tokens(user)
    account_services.session_end(user_session=UserSession.objects.get(id=tokens["sid"]), reason=reason)
    assert_error(api.get("/api/v1/me", **bearer(tokens)), 401, "token_revoked")


def test_revocation_list_unreachable_fails_closed_with_503_not_500(api, user):
    from django.test import override_settings

    tokens = issue_tokens(user)
    broken = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    with override_settings(CACHES=broken):
        assert_error(api.get("/api/v1/me", **bearer(tokens)), 503, "service_unavailable")


def test_logout_with_a_spent_refresh_token_is_reuse(api, user):
    first = issue_tokens(user)
    second = api.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json").json()
    assert_error(_logout(api, first["refresh"]), 401, "token_reused")
    assert_error(api.get("/api/v1/me", **bearer(second)), 401, "token_revoked")
    assert events(EventType.TOKEN_REUSE_DETECTED, user)


def test_logout_with_someone_elses_access_token_does_not_matter_only_the_refresh_token(api, user):
    """The refresh token is the credential for logout; a bearer header of another login is ignored."""
    mine, other = issue_tokens(user), issue_tokens(_other_user())
    assert (
        api.post("/api/v1/auth/logout", {"refresh": mine["refresh"]}, format="json", **bearer(other)).status_code == 204
    )
    assert api.get("/api/v1/me", **bearer(other)).status_code == 200
    assert_error(api.get("/api/v1/me", **bearer(mine)), 401, "token_revoked")


def _other_user() -> User:
    return cast(User, UserFactory())
