"""Logs are JSON lines with the request id and user id, and carry no password, code, token or cookie."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils.log import log_response

from accounts.models import User
from core.logging import RedactSecretsFilter, RequestContextFilter, redact, redact_value

PASSWORD = "Tr0ub4dor&3-horse-staple"
OTP = "739214"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyIiwic2lkIjoiczEifQ.c2lnbmF0dXJlLWJ5dGVz"
SESSION = "k7x2q9sessionvalue0123456789abcdef"
RESET_TOKEN = "cgh1k2-0f3e9a8b7c6d5e4f3a2b1c0d9e8f7a6b"
SECRETS = (PASSWORD, OTP, JWT, SESSION, RESET_TOKEN, "hunter2 with spaces")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The real console handler of settings.LOGGING (JSON formatter, context + redaction filters),
    writing into a buffer for the test."""
    root = logging.getLogger()
    handler = next(
        h for h in root.handlers if any(isinstance(f, RedactSecretsFilter) for f in getattr(h, "filters", []))
    )
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        handler.setStream(previous)
        root.setLevel(old_level)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into the logs"


def _secret_request() -> Any:
    factory = RequestFactory()
    request = factory.post(
        f"/accounts/password/reset/MQ/{RESET_TOKEN}/?otp={OTP}&next=/",
        data={"email": "victim@example.com", "password": PASSWORD, "otp": OTP, "code": OTP},
        HTTP_AUTHORIZATION=f"Bearer {JWT}",
        HTTP_COOKIE=f"bp_session={SESSION}; bp_csrftoken=csrf0123456789",
        REMOTE_ADDR="203.0.113.5",
    )
    request.COOKIES["bp_session"] = SESSION
    request.request_id = "req-0123456789abcdef"  # type: ignore[attr-defined]
    return request


def test_a_request_carrying_secrets_leaves_none_in_the_logs(
    log_output: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    for f in (RequestContextFilter(), RedactSecretsFilter()):
        caplog.handler.addFilter(f)
    request = _secret_request()
    body = request.body.decode()

    # The way django.request logs a 4xx and a 5xx (with the request as an extra field)...
    log_response("Bad Request: %s", request.get_full_path(), response=HttpResponse(status=400), request=request)
    try:
        raise ValueError(f"could not parse {request.POST!r} with headers {dict(request.headers)!r}")
    except ValueError as exc:
        log_response(
            "Internal Server Error: %s",
            request.get_full_path(),
            response=HttpResponse(status=500),
            request=request,
            exception=exc,
        )
    # ...and careless application logging of the body, headers, META and cookies.
    logger = logging.getLogger("bank.careless")
    logger.warning("login payload %s body %s", request.POST, body)
    logger.warning("headers %s meta %s", dict(request.headers), {k: str(v) for k, v in request.META.items()})
    logger.warning(
        "extras",
        extra={"password": PASSWORD, "cookies": dict(request.COOKIES), "auth": request.headers["Authorization"]},
    )
    logger.warning('{"password": "hunter2 with spaces", "mfa_token": "%s"}', JWT)
    logger.warning("your code %s", OTP)

    output = log_output.getvalue()
    _assert_clean(output)
    _assert_clean(caplog.text)
    lines = _lines(log_output)
    assert len(lines) == 7
    server_error = lines[1]
    assert server_error["level"] == "ERROR"
    assert "Traceback" in server_error["exc_info"] and "[REDACTED]" in server_error["exc_info"]
    assert server_error["request"].startswith("<request POST /accounts/password/reset/MQ/[REDACTED]/")
    assert server_error["status_code"] == 500
    assert server_error["request_id"] == "req-0123456789abcdef"
    # Non-secret fields survive.
    assert "victim@example.com" in output


def test_full_request_through_the_stack(
    log_output: io.StringIO, user: User, make_client: Callable[..., Client]
) -> None:
    from tests.audit.helpers import web_login

    client = make_client()
    web_login(client, user)
    session_cookie = client.cookies["bp_session"].value
    response = client.post(
        f"/no-such-page/{RESET_TOKEN}/?password={PASSWORD}&otp={OTP}",
        data={"password": PASSWORD, "otp": OTP},
        HTTP_AUTHORIZATION=f"Bearer {JWT}",
    )
    assert response.status_code == 404
    output = log_output.getvalue()
    _assert_clean(output)
    assert session_cookie not in output
    lines = _lines(log_output)
    assert any(line["message"].startswith("Not Found: /no-such-page/") for line in lines)
    not_found = next(line for line in lines if line["message"].startswith("Not Found"))
    assert not_found["request_id"] == response["X-Request-ID"]
    assert not_found["user_id"] == str(user.public_id)


def test_redaction_rules() -> None:
    assert redact_value("status_code", 403) == 403
    assert redact_value("country_code", "NL") == "NL"
    for key in (
        "password",
        "new_password1",
        "otp",
        "otp_code",
        "code",
        "mfa_token",
        "Authorization",
        "HTTP_COOKIE",
        "refresh",
        "access",
        "session_key",
        "csrfmiddlewaretoken",
        "api_key",
    ):
        assert redact_value(key, "s3cret-value") == "[REDACTED]", key
    assert redact_value("payload", {"nested": {"password": PASSWORD}, "list": [f"token={JWT}"]}) == {
        "nested": {"password": "[REDACTED]"},
        "list": ["token=[REDACTED]"],
    }
    uuid_path = "/security/sessions/0b6a7c1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/end/"
    assert redact(uuid_path) == uuid_path
    assert redact("GET /accounts/verify/" + "a" * 40 + "/") == "GET /accounts/verify/[REDACTED]/"
    assert redact("Basic dXNlcjpwYXNzd29yZA==") == "Basic [REDACTED]"
