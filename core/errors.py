"""The one base class of every app's refusals.

A service raises a subclass of `DomainError` (`AccountError`, `MFAError`, `RiskError`,
`PaymentError`, ...) carrying a stable machine `code`, the HTTP `status` a front end answers
with, a message safe to show the user, and optional extra fields (`attempts_left`, ...). Services
never build responses: the API maps these to the JSON error shape in `core.api.exception_handler`,
and the web renders them in one place (`core.middleware`), so a new entry point cannot forget one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal from a service: `code`, `status`, a user-safe message and extra body fields."""

    code: ClassVar[str] = "invalid"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        retry_at: datetime | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        if code is not None:
            self.code = code  # type: ignore[misc]
        if status is not None:
            self.status = status  # type: ignore[misc]
        self.field = field
        self.retry_at = retry_at
        self.extra = extra

    @property
    def retry_after_seconds(self) -> int | None:
        if self.retry_at is None:
            return None
        from django.utils import timezone

        return max(1, int((self.retry_at - timezone.now()).total_seconds()))

    def body(self) -> dict[str, Any]:
        """The JSON error body of shared/API.md: detail, code, then extra fields."""
        body: dict[str, Any] = {"detail": self.message, "code": self.code, **self.extra}
        if self.field:
            body["errors"] = {self.field: [self.message]}
        retry = self.retry_after_seconds
        if retry is not None:
            body.setdefault("retry_after", retry)
        return body
