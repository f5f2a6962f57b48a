"""OpenAPI post-processing: the error answers every endpoint can give, documented once.

Views document their specific errors; this hook adds the ones that come from the framework
(authentication, permissions, throttles, unknown ids, bad bodies) wherever a view did not.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
    },
    "required": ["detail", "code"],
}

_DESCRIPTIONS = {
    "400": "Bad input (per-field errors in `errors`)",
    "401": "Not authenticated, or a bad, expired or revoked token",
    "403": "Authenticated but not allowed",
    "404": "Not found, or not yours",
    "415": "Unsupported media type (send application/json)",
    "429": "Throttled or locked out (Retry-After header when known)",
}


def _response(code: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
    }


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("ApiError", ERROR_SCHEMA)
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            security = operation.get("security")
            authenticated = not (security is not None and all(not entry for entry in security))
            wanted = ["429"]
            if authenticated:
                wanted += ["401", "403"]
            if "{" in path:
                wanted.append("404")
            if operation.get("requestBody") or any(p.get("in") == "query" for p in operation.get("parameters", [])):
                wanted.append("400")
            if operation.get("requestBody"):
                wanted.append("415")
            for code in wanted:
                responses.setdefault(code, _response(code))
    return result
