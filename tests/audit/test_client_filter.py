"""The security reports and the audit API filter by app (OAuth client id), as issue 14 asks."""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.test import APIClient

from accounts.models import User
from audit.events import EventType
from audit.services import record
from tests.api.helpers import bearer, issue_tokens


def test_events_filter_by_client(make_role_user: Callable[..., User]) -> None:
    customer = make_role_user("customer")
    record(type=EventType.LOGIN_SUCCEEDED, user=customer, details={"sid": "s1", "kind": "web"})
    for client_id in ("mortgage-app", "reporting-tool", "mortgage-app"):
        record(type=EventType.LOGIN_SUCCEEDED, user=customer, details={"client_id": client_id, "kind": "oidc"})
    api = APIClient()
    api.credentials(**bearer(issue_tokens(make_role_user("security"))))
    response = api.get("/api/v1/audit/events", {"client": "mortgage-app"})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 2 and {r["details"]["client_id"] for r in rows} == {"mortgage-app"}
    refused = api.get("/api/v1/audit/events", {"client": "mortgage app\x00"})
    assert refused.status_code == 400 and "client" in refused.json()["errors"]
