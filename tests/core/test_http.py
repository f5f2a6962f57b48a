"""core.http: the one JSON body parser (web endpoints and the API's DRF parser) and the web's DomainError page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from core.errors import DomainError
from core.http import JSON_MAX_DEPTH, InvalidJSON, json_body, json_loads
from core.middleware import DomainErrorMiddleware


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_loads_accepts_ordinary_documents_up_to_the_depth_limit() -> None:
    assert json_loads(b'{"a": [1, {"b": "\\u00e9"}]}') == {"a": [1, {"b": "\u00e9"}]}
    assert json_loads(_nested(JSON_MAX_DEPTH)) == json.loads(_nested(JSON_MAX_DEPTH))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (_nested(100_000), "json_too_deep"),
        (_nested(JSON_MAX_DEPTH + 1), "json_too_deep"),
        ('{"a": ' * (JSON_MAX_DEPTH + 1) + "1" + "}" * (JSON_MAX_DEPTH + 1), "json_too_deep"),
        ("{", "invalid_json"),
        ("[NaN]", "invalid_json"),
        ("[-Infinity]", "invalid_json"),
        (b"\xc3\x28", "invalid_json"),
    ],
)
def test_json_loads_refuses(raw: Any, code: str) -> None:
    with pytest.raises(InvalidJSON) as caught:
        json_loads(raw)
    assert caught.value.code == code and caught.value.status == 400


def test_json_body_empty_is_an_empty_object_and_a_list_is_refused(rf: RequestFactory) -> None:
    assert json_body(rf.post("/x", data=b"", content_type="application/json")) == {}
    with pytest.raises(InvalidJSON):
        json_body(rf.post("/x", data=b"[]", content_type="application/json"))


def test_the_api_parser_uses_the_same_limit(client: Any) -> None:
    response = client.post("/api/v1/auth/login", data=_nested(JSON_MAX_DEPTH + 1), content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON nested too deeply.", "code": "parse_error"}


class _Refused(DomainError):
    code = "demo_refused"
    status = 409


def _raise(request: HttpRequest) -> HttpResponse:
    raise _Refused("You cannot do that twice.")


def test_a_domain_error_out_of_a_view_is_the_error_page_with_its_status_and_the_request_id(
    rf: RequestFactory,
) -> None:
    request = rf.get("/somewhere/")
    request.request_id = "req-1234567890"  # type: ignore[attr-defined]
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    middleware = DomainErrorMiddleware(_raise)
    try:
        _raise(request)
    except _Refused as exc:
        response = middleware.process_exception(request, exc)
    assert response is not None and response.status_code == 409
    body = response.content.decode()
    assert "You cannot do that twice." in body and "req-1234567890" in body


def test_a_domain_error_out_of_a_json_endpoint_is_the_json_error_body(rf: RequestFactory) -> None:
    request = rf.post("/somewhere/", data="{}", content_type="application/json")
    response = DomainErrorMiddleware(_raise).process_exception(request, _Refused("Twice.", attempts_left=1))
    assert response is not None and response.status_code == 409
    assert json.loads(response.content) == {"detail": "Twice.", "code": "demo_refused", "attempts_left": 1}


def test_other_exceptions_are_left_alone(rf: RequestFactory) -> None:
    assert DomainErrorMiddleware(_raise).process_exception(rf.get("/"), ValueError("x")) is None
