"""Log filters: request context on every line, and nothing secret in any of them."""

from __future__ import annotations

import logging
import re
from typing import Any

from core import context

# Keys whose values are never logged (extra= fields, dict keys, key=value pairs in text).
SENSITIVE_KEYS = re.compile(
    r"(pass(word)?|passwd|secret|token|otp|authorization|cookie|session(id|_?key)?|csrf|refresh|access|"
    r"api[_-]?key|private[_-]?key|signature|^code$|(?<!status)(?<!country)(?<!error)_code$)",
    re.IGNORECASE,
)
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_HIDDEN_FIELD_NAMES = (
    r"\w*pass(?:word)?\w*|passwd|\w*secret\w*|\w*token\w*|t?otp|"
    r"(?!status_|country_|error_)\w*code|refresh|access|cookie|\w*session\w*|\w*csrf\w*|"
    r"authorization|api[_-]?key|private[_-]?key|signature"
)
_PATTERNS = [
    # Authorization: Bearer <jwt> / Basic <b64> / Token <t>
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [REDACTED]"),
    # A JWT anywhere.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[REDACTED-JWT]"),
    # A whole Cookie / Set-Cookie header (HTTP_COOKIE in META): a quoted value, or the rest of the line.
    (re.compile(r"(?i)(\w*cookie[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\r\n]+)"), r"\1[REDACTED]"),
    # key=value, key: value, "key": "value", 'key': ['value'] (a QueryDict's repr) whose key looks secret.
    (
        re.compile(
            r"(?i)(\b(?:" + _HIDDEN_FIELD_NAMES + r")[\"']?\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|\[[^\]]*\]|[^\s\"'&,;}\]]+)"
        ),
        r"\1[REDACTED]",
    ),
    # A multipart/form-data part whose field name looks secret.
    (
        re.compile(r"(?i)(name=\"(?:" + _HIDDEN_FIELD_NAMES + r")\"[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n)[^\r\n]*"),
        r"\1[REDACTED]",
    ),
    # A one-time code in prose: "code 123456", "OTP: 123456".
    (re.compile(r"(?i)\b(code|otp|pin)(\s+|\s*#\s*)(\d{6,8})\b"), r"\1\2[REDACTED]"),
    # Long opaque path segments (password-reset and email-verification tokens in URLs), but not UUIDs.
    (re.compile(r"(?<=/)(?!" + _UUID + r"(?:[/?\s\"']|$))[A-Za-z0-9_:.~-]{20,}(?=[/?\s\"']|$)"), "[REDACTED]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    if SENSITIVE_KEYS.search(key):
        return "[REDACTED]"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value


def _describe_request(request: Any) -> str:
    method = getattr(request, "method", "") or ""
    path = getattr(request, "path", "") or ""
    return redact(f"<request {method} {path}>")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "META"):
            # django.request logs 4xx/5xx after the middleware has reset the context: the request
            # itself is the truth for its own line.
            from core.net import client_ip as request_ip

            user = getattr(request, "user", None)
            authenticated = user is not None and getattr(user, "is_authenticated", False)
            record.request_id = getattr(request, "request_id", "") or ""
            record.user_id = str(getattr(user, "public_id", "") or "") if authenticated else ""
            record.client_ip = request_ip(request) or ""
            return True
        ctx = context.current()
        record.request_id = ctx.request_id
        record.user_id = ctx.user_public_id
        record.client_ip = ctx.ip or ""
        return True


class RedactSecretsFilter(logging.Filter):
    """Strips passwords, codes, tokens, cookies and authorization headers from every record.

    The message is rendered and redacted; tracebacks are rendered to text and redacted (and
    exc_info dropped so no formatter renders the raw one again); extra fields are redacted by
    key and by content; a request object is reduced to its method and redacted path.
    """

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}
    _CONTEXT = {"request_id", "user_id", "client_ip"}

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not leak its arguments either
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in self._STANDARD or key in self._CONTEXT:
                continue
            if key == "request":
                record.request = _describe_request(value)
                continue
            if key == "status_code":
                continue
            setattr(record, key, redact_value(key, value))
        return True
