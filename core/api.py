"""The JSON API's error shape: {"detail", "code"} for every error, plus "errors" per field on 400."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError


class APIError(exceptions.APIException):
    """An error with a stable code, an HTTP status, optional extra body fields and headers."""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        detail: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.extra = extra or {}
        self.headers = headers or {}


def api_error(status_code: int, code: str, detail: str, **extra: Any) -> APIError:
    return APIError(status_code=status_code, code=code, detail=detail, extra=extra)


def retry_after_error(
    code: str, detail: str, retry_after: int | None, status_code: int = 429, **extra: Any
) -> APIError:
    headers = {"Retry-After": str(max(1, int(retry_after)))} if retry_after else {}
    if retry_after:
        extra.setdefault("retry_after", max(1, int(retry_after)))
    return APIError(status_code=status_code, code=code, detail=detail, extra=extra, headers=headers)


_DEFAULT_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def _field_errors(data: Any) -> Any:
    """{"field": ["message", ...]} with nested serializers flattened to strings."""
    if isinstance(data, dict):
        return {str(key): _field_errors(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_field_errors(item) for item in data]
    return str(data)


def _first_code(codes: Any) -> str:
    if isinstance(codes, dict):
        for value in codes.values():
            return _first_code(value)
    if isinstance(codes, list) and codes:
        return _first_code(codes[0])
    return str(codes) if isinstance(codes, str) else "invalid"


def domain_error_response(exc: DomainError) -> Response:
    """A service's refusal as the API's error body (the one place it is mapped)."""
    response = Response(exc.body(), status=exc.status)
    retry = exc.retry_after_seconds
    if retry is not None:
        response["Retry-After"] = str(retry)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return domain_error_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, (RequestDataTooBig, TooManyFieldsSent)):
        exc = APIError(status_code=413, code="request_too_large", detail="The request body is too large.")
    elif isinstance(exc, DjangoValidationError):  # a model-level check reached the view: still bad input
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, UnicodeDecodeError):
        exc = exceptions.ParseError("The request body is not valid UTF-8.")

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response

    status_code = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        codes = exc.get_codes()
        body: dict[str, Any] = {
            "detail": "The request is not valid.",
            "code": "invalid",
            "errors": _field_errors(errors),
        }
        if isinstance(codes, dict) and list(codes) == ["non_field_errors"]:
            body["code"] = _first_code(codes) or "invalid"
            body["detail"] = _field_errors(errors)["non_field_errors"][0]
    else:
        detail: Any = exc.detail
        code: Any = exc.get_codes()
        if isinstance(detail, dict):  # e.g. simplejwt's {"detail", "code", "messages"}
            text = str(detail.get("detail", "")) or "The request could not be processed."
            code = detail.get("code", code)
        elif isinstance(detail, list):
            text = str(detail[0]) if detail else "The request could not be processed."
        else:
            text = str(detail)
        if not isinstance(code, str):
            code = _first_code(code)
        if isinstance(exc, exceptions.NotAuthenticated):
            code = "not_authenticated"
        body = {"detail": text, "code": code or _DEFAULT_CODES.get(status_code, "error")}
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            body["retry_after"] = max(1, int(wait))
        if isinstance(exc, APIError):
            body.update(exc.extra)
            for name, value in exc.headers.items():
                response[name] = value
    response.data = body
    if status_code == status.HTTP_429_TOO_MANY_REQUESTS and "Retry-After" not in response:
        retry = body.get("retry_after")
        if retry:
            response["Retry-After"] = str(retry)
    return response
