"""The resource APIs accept the provider's access tokens beside the mobile API's.

A provider token is an RS256 JWT (typ at+jwt) whose payload carries `client_id` and whose
`iss`/`aud` are the provider's (idp.conf); a mobile token has neither `client_id` nor those
values (accounts.tokens), so this class claims only provider tokens and leaves every other
bearer token to accounts.api.authentication.JWTAuthentication, which comes after it.

Checked on every request: signature (by kid, the shared key ring), alg, typ, iss, aud, exp,
iat; then the revocation list (the token's jti, and the web login's sid for user tokens); then
the user (a user token: its `sub`; a client-credentials token: the user the client is bound
to). Authorization is deny-by-default: a view must declare `required_scopes` (a list, or a
dict from HTTP method to list) to be reachable with a provider token at all, and may declare
`required_acr` (same shape) for RFC 9470 step-up.

DPoP (RFC 9449 7): a token with `cnf.jkt` is accepted only as `Authorization: DPoP <token>` with a
valid proof of that key for this method and URL, carrying `ath` (core.dpop); anything else is a
401 with the `WWW-Authenticate: DPoP` challenge. A bearer token sent with the DPoP scheme is refused.

Cost: as a mobile token's. The verified claims are memoised per process by the exact token (the
key's presence in the ring, exp and iat are checked on every use), and the request's Redis
reads (the jti's revocation entry, the login's, the client's bound user and the user row) go in
one round trip (accounts.api.authentication.prefetch).
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import AuthenticationFailed

from accounts import revocation
from accounts.authn import ACR_MFA, ACR_VALUES
from accounts.models import User
from core import context, dpop
from idp import conf, services, tokens
from idp.tokens import InvalidProviderToken, ProviderClaims, access_token_decode, unverified_claims

logger = logging.getLogger(__name__)

_LEVELS = {value: rank for rank, value in enumerate(ACR_VALUES)}


def _for_method(declared: Any, method: str) -> Any:
    if isinstance(declared, dict):
        return declared.get(method.upper(), declared.get("*"))
    return declared


def required_scopes_for(view: Any, method: str) -> list[str] | None:
    """The scopes a view asks of a provider token for this method; None: provider tokens refused."""
    declared = getattr(view, "required_scopes", None)
    if declared is None:
        return None
    scopes = _for_method(declared, method)
    return None if scopes is None else list(scopes)


def required_acr_for(view: Any, method: str) -> str | None:
    return _for_method(getattr(view, "required_acr", None), method)


class ProviderTokenAuthentication(authentication.BaseAuthentication):
    www_authenticate_realm = "api"

    def authenticate_header(self, request: Request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'

    def authenticate(self, request: Request) -> tuple[User, ProviderClaims] | None:
        scheme_token = self._raw_token(request)
        if scheme_token is None:
            return None
        scheme, raw = scheme_token
        peek = unverified_claims(raw)
        if not peek or "client_id" not in peek or peek.get("iss") != conf.issuer():
            return None  # not a provider token: the mobile authentication decides
        try:
            claims = verified_claims(raw)
        except InvalidProviderToken as exc:
            if scheme == "DPoP":
                raise _dpop_refusal("invalid_token", exc.detail, code=exc.code) from exc
            raise AuthenticationFailed(exc.detail, code=exc.code) from exc
        dpop_check(request, scheme=scheme, raw=raw, jkt=claims.jkt, client_id=claims.client_id)
        try:
            _prefetch(request, claims)
            revoked = services.token_revoked_reason(jti=claims.jti, sid=claims.sid)
        except Exception as exc:  # Redis or the registry unreachable: fail closed
            from accounts.api.authentication import ServiceUnavailable

            logger.exception("revocation list unavailable")
            raise ServiceUnavailable() from exc
        if revoked:
            raise AuthenticationFailed("This login has ended. Please log in again.", code="token_revoked")
        user = self._user(claims)
        context.update(user_public_id=str(user.public_id))
        self._authorize(request, claims)
        if claims.sid:
            _touch(user=user, client_id=claims.client_id)
        return user, claims

    @staticmethod
    def _raw_token(request: Request) -> tuple[str, str] | None:
        try:
            header = authentication.get_authorization_header(request).decode("latin-1")
        except UnicodeError:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] not in ("Bearer", "DPoP"):
            return None
        return parts[0], parts[1]

    @staticmethod
    def _user(claims: ProviderClaims) -> User:
        if claims.sid:
            from accounts.usercache import user_by_public_id

            user = user_by_public_id(claims.sub)  # Redis when warm, as for mobile tokens
        else:
            from idp.clientcache import client_user

            user = client_user(claims.client_id)  # Redis when warm; stale at once when the client changes
            if user is not None:
                _remember_owner(claims.client_id, str(user.public_id))
        if user is None or not user.is_active:
            raise AuthenticationFailed("The access token is not valid.", code="token_not_valid")
        return user

    @staticmethod
    def _authorize(request: Request, claims: ProviderClaims) -> None:
        from core.api import APIError  # not at import: DRF imports this class while loading its views

        view = (getattr(request, "parser_context", None) or {}).get("view")
        needed = required_scopes_for(view, request.method or "GET")
        if needed is None:
            raise APIError(
                status_code=403,
                code="insufficient_scope",
                detail="This endpoint does not accept tokens issued to other applications.",
                headers={"WWW-Authenticate": 'Bearer realm="api", error="insufficient_scope"'},
            )
        missing = [scope for scope in needed if scope not in claims.scope]
        if missing:
            raise APIError(
                status_code=403,
                code="insufficient_scope",
                detail=f"The access token lacks the scope {' '.join(missing)}.",
                extra={"required_scopes": needed},
                headers={
                    "WWW-Authenticate": f'Bearer realm="api", error="insufficient_scope", scope="{" ".join(needed)}"'
                },
            )
        acr = required_acr_for(view, request.method or "GET")
        if acr and _LEVELS.get(claims.acr, -1) < _LEVELS.get(acr, len(ACR_VALUES)):
            raise APIError(
                status_code=401,
                code="insufficient_user_authentication",
                detail="A stronger sign-in is needed: sign in again with a second factor.",
                extra={"acr_values": acr},
                headers={
                    "WWW-Authenticate": (
                        'Bearer realm="api", error="insufficient_user_authentication", '
                        'error_description="A different authentication level is required", '
                        f'acr_values="{acr}"'
                    )
                },
            )


# --- Cost per request: verified claims memoised, one Redis round trip -------------------------

# (token, issuer, audience) -> (its header, its verified claims), per process.
_VERIFIED: dict[tuple[str, str, str], tuple[dict[str, Any], ProviderClaims]] = {}
_VERIFIED_MAX = 50_000


def verified_claims(raw: str) -> ProviderClaims:
    """idp.tokens.access_token_decode, memoised by the exact token string: a token verified once
    is accepted again while its key is still one of ours and its exp and iat hold (checked here on
    every use, as PyJWT checks them); anything else is verified again, and refused as before."""
    memo_key = (raw, conf.issuer(), conf.audience())
    seen = _VERIFIED.get(memo_key)
    if seen is not None:
        header, claims = seen
        now = int(timezone.now().timestamp())
        leeway = int(settings.JWT_LEEWAY_SECONDS)
        if claims.exp > now - leeway and claims.iat <= now + leeway and tokens.verification_key(header):
            return claims
    claims = access_token_decode(raw)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[memo_key] = (jwt.get_unverified_header(raw), claims)
    return claims


# client_id -> the public id of the user it acted for last time in this process: the guess whose
# row is fetched with the client's (idp.clientcache checks the guess before it is used).
_owners: dict[str, str] = {}


def _remember_owner(client_id: str, public_id: str) -> None:
    if _owners.get(client_id) != public_id:
        if len(_owners) >= 10_000:
            _owners.clear()
        _owners[client_id] = public_id


def _prefetch(request: Request, claims: ProviderClaims) -> None:
    """The Redis reads of this request in one round trip: the jti's revocation entry, the login's
    (user tokens), the client's bound user (client credentials) and the user's row."""
    from accounts.api.authentication import prefetch
    from idp import clientcache

    keys = [services.revoked_jti_key(claims.jti)] if claims.jti else []
    if claims.sid:
        keys.extend(revocation.keys(claims.sid))
        prefetch(request, user_public_id=claims.sub, keys=keys)
        return
    keys.extend(clientcache.owner_keys(claims.client_id))
    owner = _owners.get(claims.client_id)
    if owner is None:
        from core.cached import prefetch as read_ahead

        read_ahead(keys)
    else:
        prefetch(request, user_public_id=owner, keys=keys)


def _dpop_refusal(error: str, detail: str, *, code: str = "token_not_valid", nonce: bool = False) -> Exception:
    from core.api import APIError

    headers = {"WWW-Authenticate": dpop.challenge(error=error, description=detail)}
    if nonce:
        headers["DPoP-Nonce"] = dpop.nonce_issue()
    return APIError(status_code=401, code=code, detail=detail, headers=headers)


def dpop_check(request: Request, *, scheme: str, raw: str, jkt: str, client_id: str = "") -> None:
    """RFC 9449 7: a DPoP-bound token needs the DPoP scheme and a proof of its key for this
    request (method, URL, ath); a bearer token must not come with the DPoP scheme."""
    if not jkt:
        if scheme == "DPoP":
            raise _dpop_refusal("invalid_token", "This access token is not DPoP-bound: send it as a Bearer token.")
        return
    if scheme != "DPoP":
        raise _dpop_refusal(
            "invalid_token", "This access token is DPoP-bound: send it with the DPoP scheme and a proof."
        )
    from django.conf import settings

    proofs = request.headers.get("DPoP")
    htu = str(settings.PUBLIC_BASE_URL).rstrip("/") + request.path
    try:
        dpop.verify_proof(proofs, htm=request.method or "GET", htu=htu, access_token=raw, jkt=jkt)
    except dpop.DPoPError as exc:
        if exc.replayed:
            from audit.events import EventType, Outcome
            from audit.services import record

            record(
                type=EventType.DPOP_PROOF_REPLAYED,
                outcome=Outcome.DENIED,
                user=None,
                details={"client_id": client_id, "endpoint": "resource"},
            )
        if exc.error == dpop.ERROR_USE_NONCE:
            raise _dpop_refusal(dpop.ERROR_USE_NONCE, exc.description, code="use_dpop_nonce", nonce=True) from exc
        raise _dpop_refusal(dpop.ERROR_INVALID_PROOF, exc.description, code="invalid_dpop_proof") from exc


def _touch(*, user: User, client_id: str) -> None:
    """ "Last used" of the connected app, written at most once per SESSION_TOUCH_INTERVAL."""
    from django.conf import settings
    from django.core.cache import cache
    from django.utils import timezone

    from idp.models import Consent

    if cache.add(f"idp-touch:{client_id}:{user.pk}", 1, timeout=max(1, int(settings.SESSION_TOUCH_INTERVAL))):
        Consent.objects.filter(user=user, client__client_id=client_id).update(last_used_at=timezone.now())


class ProviderTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI: provider tokens as an OAuth 2 scheme; views' `required_scopes` become its scopes."""

    target_class = "idp.authentication.ProviderTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        from django.conf import settings

        base = conf.issuer()
        scopes = dict(settings.OAUTH2_PROVIDER["SCOPES"])
        return {
            "type": "oauth2",
            "description": (
                "Access tokens of the bank's identity provider (RS256 JWT, typ at+jwt, keys at "
                "/.well-known/jwks.json; discovery at /.well-known/openid-configuration). A token without "
                'the scope an operation lists gets 403 {"code": "insufficient_scope"}; one whose sign-in '
                'level is too low for it gets 401 {"code": "insufficient_user_authentication"} with '
                f'WWW-Authenticate error="insufficient_user_authentication" and acr_values="{ACR_MFA}" (RFC 9470).'
            ),
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": f"{base}/o/authorize/",
                    "tokenUrl": f"{base}/o/token/",
                    "refreshUrl": f"{base}/o/token/",
                    "scopes": scopes,
                },
                "clientCredentials": {"tokenUrl": f"{base}/o/token/", "scopes": scopes},
            },
        }

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[Any]] | None:  # type: ignore[override]
        scopes = required_scopes_for(auto_schema.view, auto_schema.method)
        if scopes is None:
            return None  # provider tokens are refused there: not offered in the schema
        return {self.name: scopes}
