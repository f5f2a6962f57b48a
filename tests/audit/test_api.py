"""GET /api/v1/audit/events: the security group only, filters, cursor pagination, the error shape."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from audit.events import EventType, Outcome
from tests.api.helpers import bearer, issue_tokens
from tests.audit.helpers import make_events

URL = "/api/v1/audit/events"


def _api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(issue_tokens(user)))
    return client


def test_anonymous_gets_401() -> None:
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert set(response.json()) >= {"detail", "code"}


@pytest.mark.parametrize("role", ["customer", "support"])
def test_outside_the_security_group_gets_403(make_role_user: Callable[..., User], role: str) -> None:
    response = _api(make_role_user(role)).get(URL)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_web_session_cookie_is_not_enough(
    make_role_user: Callable[..., User], role_client: Callable[[User], Any]
) -> None:
    assert role_client(make_role_user("security")).get(URL).status_code == 401


def test_security_reads_filtered_pages(make_role_user: Callable[..., User]) -> None:
    analyst = make_role_user("security")
    alice = make_role_user("customer")
    now = timezone.now()
    make_events(5, start=now - timedelta(hours=2), user=alice, type=EventType.LOGIN_FAILED)
    make_events(3, start=now - timedelta(hours=1), user=alice, type=EventType.LOGIN_SUCCEEDED, outcome=Outcome.SUCCESS)
    make_events(4, start=now - timedelta(days=2), type=EventType.LOGIN_FAILED)
    client = _api(analyst)

    body = client.get(URL, {"user": alice.email, "type": "auth.login_failed", "limit": "2"}).json()
    assert len(body["results"]) == 2 and body["next"]
    first = body["results"][0]
    assert first["user_id"] == str(alice.public_id) and first["user_email"] == alice.email
    assert first["type"] == "auth.login_failed" and first["outcome"] == "failure"
    seen = [e["id"] for e in body["results"]]
    while body["next"]:
        body = client.get(body["next"]).json()
        seen += [e["id"] for e in body["results"]]
    assert len(seen) == len(set(seen)) == 5

    since = (now - timedelta(days=1)).isoformat()
    body = client.get(URL, {"since": since, "outcome": "failure", "type": "auth."}).json()
    assert len(body["results"]) == 5
    until = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = client.get(URL, {"until": until}).json()
    assert len(body["results"]) == 4
    body = client.get(URL, {"user": str(alice.public_id), "outcome": "success"}).json()
    assert len(body["results"]) == 3


def test_bad_filters_are_400_with_field_errors(make_role_user: Callable[..., User]) -> None:
    response = _api(make_role_user("security")).get(URL, {"since": "last tuesday", "outcome": "maybe"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] and body["detail"]
    assert set(body["errors"]) >= {"since", "outcome"}
