"""Schemathesis against the project's own OpenAPI schema: every operation, anonymous and with a
real bearer token. Zero 5xx and every response conforms to the schema. `make fuzz` runs more examples."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.api.helpers import issue_tokens

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

app = get_wsgi_application()
# Generating the schema touches no database table, so it can be loaded at import time.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Any:
    """The WSGI handler closes the DB connection after each request; the test's transaction needs it
    (Django's test Client disconnects the same hook)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def relaxed_throttles(settings):  # type: ignore[no-untyped-def]
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = dict.fromkeys(rest.get("DEFAULT_THROTTLE_RATES", {}), "100000/min")
    settings.REST_FRAMEWORK = rest
    settings.RATE_LIMITS = dict.fromkeys(settings.RATE_LIMITS, "100000/m")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_anonymous(case: Any, relaxed_throttles: None) -> None:
    case.call_and_validate(app=app, checks=CHECKS, headers={"REMOTE_ADDR": "203.0.113.30"})


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_with_a_bearer_token(case: Any, relaxed_throttles: None) -> None:
    user: User = UserFactory()  # type: ignore[assignment]
    tokens = issue_tokens(user)
    case.call_and_validate(app=app, checks=CHECKS, headers={"Authorization": f"Bearer {tokens['access']}"})
