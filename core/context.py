"""Per-request facts (request id, IP, user agent) that audit rows and log lines carry."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""
    ua_family: str = ""
    country: str = ""
    user_public_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)


_EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "request_context",
    default=_EMPTY,
)


def current() -> RequestContext:
    return _current.get()


def set_context(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def reset_context(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)


def update(**changes: Any) -> None:
    """Adds facts to the current request's context. Outside a request (a Celery task, a command,
    a service called directly) there is no request context to add to, and nothing may leak into
    whatever runs next on this thread."""
    ctx = _current.get()
    if not ctx.request_id:
        return
    fields = dict(ctx.__dict__)
    for name, value in changes.items():
        if name not in fields:
            raise TypeError(f"RequestContext has no field {name!r}")
        fields[name] = value
    # dataclasses.replace runs the generated __init__ through its field machinery: a copy of the
    # frozen instance's fields is the same value at a fraction of the cost (every bearer request).
    new = object.__new__(RequestContext)
    new.__dict__.update(fields)
    _current.set(new)
