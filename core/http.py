"""JSON request bodies: one parser for the API (core.parsers) and the web's JSON endpoints.

The web's passkey endpoints read `json_body(request)`; DRF reads the same `json_loads` through
`core.parsers.SafeJSONParser`. Bad syntax, a bad encoding, NaN/Infinity, nesting deeper than
JSON_MAX_DEPTH and a body above DATA_UPLOAD_MAX_MEMORY_SIZE are refused as `InvalidJSON` (a
DomainError), never a RecursionError or a 500.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from core.errors import DomainError

# Far above what any of our bodies needs (a WebAuthn response nests 3 levels).
JSON_MAX_DEPTH = 32


class InvalidJSON(DomainError):
    """A request body that is not the JSON we accept."""

    code = "invalid_json"
    status = 400
    default_message = "The request body is not valid JSON."


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Iterative (no recursion): True when containers nest deeper than `limit`."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_loads(raw: bytes | str, *, encoding: str = "utf-8") -> Any:
    """The parsed value of a JSON document, or InvalidJSON."""
    try:
        text = raw.decode(encoding) if isinstance(raw, bytes) else raw
    except (UnicodeDecodeError, LookupError) as exc:
        raise InvalidJSON(f"The request body is not valid {encoding} text.") from exc
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise InvalidJSON("JSON nested too deeply.", code="json_too_deep") from exc
    except ValueError as exc:
        raise InvalidJSON() from exc
    if _depth_exceeds(data, JSON_MAX_DEPTH):
        raise InvalidJSON("JSON nested too deeply.", code="json_too_deep")
    return data


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body); InvalidJSON for anything else."""
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise InvalidJSON("The request body is too large.", code="request_too_large", status=413) from exc
    if not raw.strip():
        return {}
    data = json_loads(raw, encoding=request.encoding or "utf-8")
    if not isinstance(data, dict):
        raise InvalidJSON("Send a JSON object.")
    return data
