"""Pushed authorization requests (RFC 9126): where pushed requests live until they are used.

A client POSTs its authorization request to /o/par/ (idp.views.PushedAuthorizationView, which
authenticates the client and validates the parameters with the same oauthlib validation the
authorization endpoint runs) and gets a `request_uri`. That value works once and for
IDP_PAR_LIFETIME_SECONDS (default 50, under the profile's 60): the authorization endpoint takes it
out of Redis atomically (a second use, or a late one, finds nothing).

Signing in may take the user longer than that (a password, a second factor, consent), so taking
the request starts an *interaction* (IDP_PAR_INTERACTION_SECONDS, default 600) under a new random
handle; the login, re-authentication and consent pages come back to /o/authorize/?client_id=..&par=
<handle>, and the interaction ends when the code is issued (or refused), so it also works once.
The parameters always come from Redis: nothing the browser carries can change them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
_PUSHED = "idp-par:"
_FLOW = "idp-par-flow:"


def lifetime() -> int:
    return int(getattr(settings, "IDP_PAR_LIFETIME_SECONDS", 50))


def interaction_lifetime() -> int:
    return int(getattr(settings, "IDP_PAR_INTERACTION_SECONDS", 600))


def _key(prefix: str, value: str) -> str:
    return prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Pushed:
    client_id: str
    params: dict[str, str]
    dpop_jkt: str = ""
    expires_at: int = 0  # epoch seconds; checked on the app's clock as well as by Redis's TTL

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "params": self.params,
            "dpop_jkt": self.dpop_jkt,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Pushed | None:
        if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
            return None
        return cls(
            client_id=str(data.get("client_id", "")),
            params=dict(data["params"]),
            dpop_jkt=str(data.get("dpop_jkt", "")),
            expires_at=int(data.get("expires_at") or 0),
        )


def push(pushed: Pushed) -> tuple[str, int]:
    """Stores a validated request; returns (request_uri, expires_in)."""
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    pushed.expires_at = int(timezone.now().timestamp()) + lifetime()
    cache.set(_key(_PUSHED, request_uri), pushed.as_dict(), timeout=lifetime() + 1)
    return request_uri, lifetime()


def take(request_uri: str, *, client_id: str) -> Pushed | None:
    """The pushed request, removed at once (single use), or None: unknown, used, expired, another client's."""
    if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
        return None
    key = _key(_PUSHED, request_uri)
    pushed = Pushed.from_dict(cache.get(key))
    # Another client's request_uri is refused without spending it.
    if pushed is None or not secrets.compare_digest(pushed.client_id, client_id):
        return None
    # delete() says whether this request removed it: of two racing uses only one wins.
    if not cache.delete(key):
        return None
    if int(timezone.now().timestamp()) >= pushed.expires_at:
        return None  # late (Redis keeps it a little longer than its lifetime at most)
    return pushed


def interaction_start(pushed: Pushed) -> str:
    handle = secrets.token_urlsafe(24)
    cache.set(_key(_FLOW, handle), pushed.as_dict(), timeout=interaction_lifetime())
    return handle


def interaction(handle: str, *, client_id: str) -> Pushed | None:
    if not handle or len(handle) > 100:
        return None
    pushed = Pushed.from_dict(cache.get(_key(_FLOW, handle)))
    if pushed is None or not secrets.compare_digest(pushed.client_id, client_id):
        return None
    return pushed


def interaction_update(handle: str, pushed: Pushed) -> None:
    cache.set(_key(_FLOW, handle), pushed.as_dict(), timeout=interaction_lifetime())


def interaction_end(handle: str) -> bool:
    """True once: the interaction is over (a code was issued from it, or it was refused)."""
    return bool(cache.delete(_key(_FLOW, handle)))
