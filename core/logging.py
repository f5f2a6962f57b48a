"""Log filters: request context on every line, and nothing secret in any of them."""

from __future__ import annotations

import logging
import re
from typing import Any

from core import context

SENSITIVE_KEYS = re.compile(
    r"(pass(word)?|passwd|secret|token|otp|code|authorization|cookie|session|csrf|refresh|access|api[_-]?key)",
    re.IGNORECASE,
)
_PATTERNS = [
    # Authorization: Bearer <jwt> / Basic <b64>
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [REDACTED]"),
    # A JWT anywhere.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[REDACTED-JWT]"),
    # key=value and "key": "value" pairs whose key looks secret.
    (
        re.compile(
            r"(?i)([\"']?(?:password\d?|new_password\d|old_password|passwd|secret|token|otp|code|"
            r"refresh|access|mfa_token|cookie|bp_session|bp_csrftoken|csrfmiddlewaretoken|"
            r"authorization|sessionid)[\"']?\s*[:=]\s*[\"']?)([^\"'&\s,;}]+)"
        ),
        r"\1[REDACTED]",
    ),
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
    return value


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.current()
        record.request_id = ctx.request_id
        record.user_id = ctx.user_public_id
        record.client_ip = ctx.ip or ""
        return True


class RedactSecretsFilter(logging.Filter):
    """Strips passwords, codes, tokens, cookies and authorization headers from every record."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key in self._STANDARD or key in {"request_id", "user_id", "client_ip"}:
                continue
            if key == "request":
                record.request = "<request>"
                continue
            setattr(record, key, redact_value(key, value))
        return True
