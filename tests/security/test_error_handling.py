"""Last-resort error handling (ASVS 7.4.1-7.4.3): generic answers, no internals, 503 for a service down."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import failsafe
from core.views import server_error


def _handled(rf: Any, path: str, exc: Exception) -> Any:
    request = rf.get(path)
    try:
        raise exc
    except Exception:  # the 500 handler runs while Django handles the exception
        return server_error(request)


def test_an_unexpected_error_gets_the_generic_page_without_internals(rf: Any) -> None:
    response = _handled(rf, "/payments/", ValueError("secret internal detail /srv/app/x.py"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    assert "secret internal detail" not in body and "Traceback" not in body and "x.py" not in body


def test_the_error_pages_quote_the_request_id_for_support(rf: Any) -> None:
    for exc in (ValueError("boom"), RedisConnectionError("refused")):
        request = rf.get("/payments/")
        request.request_id = "0123456789abcdef0123456789abcdef"
        try:
            raise exc
        except Exception:
            response = server_error(request)
        assert b"0123456789abcdef0123456789abcdef" in response.content


def test_an_unexpected_api_error_is_the_json_error_shape(rf: Any) -> None:
    response = _handled(rf, "/api/v1/payments", KeyError("internal"))
    assert response.status_code == 500
    assert json.loads(response.content) == {"detail": "Please try again in a moment.", "code": "server_error"}


@pytest.mark.parametrize(
    "exc",
    [RedisConnectionError("refused"), RedisTimeoutError("slow"), OperationalError("server closed the connection")],
)
def test_a_backing_service_down_is_503_with_retry_after_page_and_json(rf: Any, exc: Exception) -> None:
    page = _handled(rf, "/accounts/login/", exc)
    assert page.status_code == 503 and page["Retry-After"] and b"temporarily unavailable" in page.content
    api = _handled(rf, "/api/v1/auth/login", exc)
    assert api.status_code == 503 and json.loads(api.content)["code"] == "service_unavailable"


def test_a_wrapped_service_error_is_recognised_and_others_are_not() -> None:
    try:
        try:
            raise RedisConnectionError("refused")
        except RedisConnectionError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert failsafe.is_unavailable(outer)
    assert not failsafe.is_unavailable(ValueError("x"))
    assert not failsafe.is_unavailable(None)


def test_the_middleware_turns_a_view_level_outage_into_503(rf: Any) -> None:
    middleware = failsafe.FailSafeMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
    request = rf.get("/")
    response = middleware.process_exception(request, RedisConnectionError("refused"))
    assert response is not None and response.status_code == 503
    assert middleware.process_exception(request, ValueError("other")) is None
