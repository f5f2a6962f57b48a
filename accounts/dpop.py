"""DPoP (RFC 9449) for the mobile API's own tokens (issue 18), on core.dpop's proof checks.

Token requests (login, its second step, refresh): a `DPoP` header proves a key; the login's
token family (accounts.models.UserSession.dpop_jkt) is bound to it, every access token of the
family carries `cnf.jkt`, and a refresh needs a proof of the same key. With API_REQUIRE_DPOP on,
a token request without a valid proof is refused (400 invalid_dpop_proof; use_dpop_nonce with a
fresh `DPoP-Nonce` when DPOP_REQUIRE_NONCE is on).

Resource requests (accounts.api.authentication.JWTAuthentication calls `resource_check`): a bound
token only with `Authorization: DPoP <token>` and a proof of its key for this method, URL and
token (`ath`); else 401 with the `WWW-Authenticate: DPoP` challenge. A bearer token never touches
Redis here and no path adds a SQL query.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from core import dpop

_CACHED = "_accounts_dpop_jkt"


def required() -> bool:
    return bool(getattr(settings, "API_REQUIRE_DPOP", False))


def _htu(request: Any) -> str:
    return str(settings.PUBLIC_BASE_URL).rstrip("/") + request.path


def _error(status: int, error: str, detail: str, *, www: bool = False) -> Exception:
    from core.api import APIError

    headers: dict[str, str] = {}
    if error == dpop.ERROR_USE_NONCE:
        headers["DPoP-Nonce"] = dpop.nonce_issue()
    if www:
        headers["WWW-Authenticate"] = dpop.challenge(error=error, description=detail)
    return APIError(status_code=status, code=error, detail=detail, headers=headers)


def _audit_replay(request: Any, endpoint: str) -> None:
    from audit.events import EventType, Outcome
    from audit.services import record

    record(type=EventType.DPOP_PROOF_REPLAYED, outcome=Outcome.DENIED, user=None, details={"endpoint": endpoint})


def token_request_jkt(request: HttpRequest) -> str:
    """The thumbprint of the key this token request proves ("" without a proof, when allowed).
    Checked once per request (a proof's jti counts once)."""
    cached = getattr(request, _CACHED, None)
    if cached is not None:
        return str(cached)
    proof = request.headers.get("DPoP")
    if not proof:
        if required():
            raise _error(400, dpop.ERROR_INVALID_PROOF, "This API needs a DPoP proof with every token request.")
        setattr(request, _CACHED, "")
        return ""
    try:
        checked = dpop.verify_proof(proof, htm=request.method or "POST", htu=_htu(request))
    except dpop.DPoPError as exc:
        if exc.replayed:
            _audit_replay(request, "mobile_token")
        raise _error(400, exc.error, exc.description) from exc
    setattr(request, _CACHED, checked.jkt)
    return checked.jkt


def dpop_scheme_token(header: bytes) -> bytes | None:
    """The token of an `Authorization: DPoP <token>` header (simplejwt reads Bearer only)."""
    parts = header.split()
    if len(parts) == 2 and parts[0] == b"DPoP":
        return parts[1]
    return None


def resource_check(request: Any, *, header: bytes, raw: bytes | str, jkt: str) -> None:
    """RFC 9449 7: a bound token needs the DPoP scheme and a proof; a bearer one the Bearer scheme."""
    dpop_scheme = header.startswith(b"DPoP ")
    if not jkt:
        if dpop_scheme:
            raise _error(
                401, "invalid_token", "This access token is not DPoP-bound: send it as a Bearer token.", www=True
            )
        return
    if not dpop_scheme:
        raise _error(401, "invalid_token", "This access token is DPoP-bound: send it with the DPoP scheme.", www=True)
    token = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    try:
        dpop.verify_proof(
            request.headers.get("DPoP"), htm=request.method or "GET", htu=_htu(request), access_token=token, jkt=jkt
        )
    except dpop.DPoPError as exc:
        if exc.replayed:
            _audit_replay(request, "mobile_resource")
        raise _error(401, exc.error, exc.description, www=True) from exc
