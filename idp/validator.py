"""django-oauth-toolkit's request validator, taught the portal's logins, JWTs and audit trail.

What it changes (DOT 3.4.1 behaviour read in oauth2_provider/oauth2_validators.py):
- a grant stores how the web login was authenticated (sid, auth_time, amr); the token
  endpoint reads it from there (DOT reads `auth_time` from `last_login`, and has no amr/acr);
- access tokens are JWTs (idp.tokens, ACCESS_TOKEN_GENERATOR) stored by checksum with their
  `jti` and `sid`; a refresh token keeps the login it came from and is only issued with
  `offline_access`; refresh of a login that has ended is refused;
- ID tokens are signed with the accounts key ring (one JWKS), `sub` is the user's public UUID;
- bearer checks (userinfo, introspection) also consult the revocation list;
- every issue, refresh, reuse and revocation writes its audit event with the client id;
- issue 18 (FAPI 2.0): `private_key_jwt` client authentication (idp.client_auth) in
  authenticate_client; DPoP proofs at the token endpoint (core.dpop) in validate_grant_type,
  which runs for every grant right after client authentication, binding the access token
  (cnf.jkt), a public client's refresh token, and checking a code's dpop_jkt; FAPI clients'
  refresh tokens are not rotated (the binding protects them).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from oauth2_provider import cimd
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from accounts.models import User
from audit.events import EventType, Outcome
from audit.services import event as audit_event
from audit.services import record, record_many
from core import dpop
from core.sql import update_sql
from idp import client_auth, clientcache, conf, services, storage
from idp.models import AccessToken, Client, Consent, Grant, IDToken, RefreshToken
from idp.tokens import LoginContext, id_token_issue

logger = logging.getLogger(__name__)


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class DPoPProofError(oauth2_errors.OAuth2Error):
    """invalid_dpop_proof / use_dpop_nonce at the token endpoint (RFC 9449 5, 8): 400, with a
    fresh server nonce in `DPoP-Nonce`."""

    status_code = 400

    def __init__(self, error: str, description: str, request: Any = None) -> None:
        self.error = error
        super().__init__(description=description, request=request)

    @property
    def headers(self) -> dict[str, str]:
        return {"DPoP-Nonce": dpop.nonce_issue()} if dpop.nonce_required() else {}


def dpop_header(request: Any) -> str | None:
    headers = getattr(request, "headers", None) or {}
    value = headers.get("HTTP_DPOP") or headers.get("DPoP")
    return str(value) if value else None


def endpoint_url(request: Any) -> str:
    """The public URL of the endpoint this oauthlib request came to (issuer + path)."""
    return conf.issuer() + urlsplit(str(request.uri or "")).path


class Validator(OAuth2Validator):
    oidc_claim_scope = {"sub": "openid", "email": "email", "email_verified": "email"}

    # --- Authorization codes --------------------------------------------------------------

    def _create_authorization_code(self, request: Any, code: dict[str, str], expires: Any = None) -> Grant:
        client = request.client
        if client.fapi and expires is None:
            from datetime import timedelta

            from oauth2_provider.settings import oauth2_settings

            # FAPI 2.0 5.3.2.1: codes live at most 60 seconds, whatever the deployment's setting.
            expires = timezone.now() + timedelta(seconds=min(60, oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS))
        grant = super()._create_authorization_code(request, code, expires)
        login: LoginContext | None = getattr(request, "idp_login", None)
        if login is not None:
            grant.sid = login.sid
            grant.auth_time = login.auth_time
            grant.amr = list(login.amr)
        grant.dpop_jkt = str(getattr(request, "idp_dpop_jkt", "") or "")
        grant.save(update_fields=["sid", "auth_time", "amr", "dpop_jkt"])
        record(
            type=EventType.OAUTH_AUTHORIZED,
            user=request.user,
            details={
                "client_id": client.client_id,
                "client": client.name,
                "scope": " ".join(request.scopes or []),
                "sid": login.sid if login else "",
            },
        )
        return grant

    # One read of the grant per token request. oauthlib and DOT ask for the code's grant up to
    # seven times in one exchange (the scopes that pick the OpenID grant, validate_code, the PKCE
    # challenge and its method, the redirect URI, the nonce, the resource narrowing), each a
    # SELECT by code; the first reads it (code is unique) and the others use that row, applying
    # each one's own filter (the grant belongs to the authenticated client) in Python.

    def _grant(self, request: Any, code: str) -> Grant | None:
        memo = getattr(request, "idp_grant", None)
        if memo is not None and memo[0] == code:
            return memo[1]  # type: ignore[no-any-return]
        grant = storage.grant_by_code(code) if code else None
        request.idp_grant = (code, grant)
        return grant

    def _client_grant(self, request: Any, code: str, client: Any) -> Grant | None:
        grant = self._grant(request, code)
        if grant is None or client is None or grant.application_id != getattr(client, "pk", None):
            return None
        return grant

    def get_authorization_code_scopes(self, client_id: str, code: str, redirect_uri: str, request: Any) -> list[str]:
        grant = self._grant(request, code)
        return grant.scope.split() if grant is not None and grant.scope else []

    def get_authorization_code_nonce(self, client_id: str, code: str, redirect_uri: str, request: Any) -> str | None:
        grant = self._grant(request, code)
        return (grant.nonce or None) if grant is not None else None

    def get_code_challenge(self, code: str, request: Any) -> str | None:
        grant = self._client_grant(request, code, request.client)
        return (grant.code_challenge or None) if grant is not None else None

    def get_code_challenge_method(self, code: str, request: Any) -> str | None:
        grant = self._client_grant(request, code, request.client)
        return (grant.code_challenge_method or None) if grant is not None else None

    def confirm_redirect_uri(
        self, client_id: str, code: str, redirect_uri: str, client: Any, *args: Any, **kwargs: Any
    ) -> bool:
        request = args[0] if args else kwargs.get("request")
        if request is None:
            grant = Grant.objects.filter(code=code, application=client).first()
        else:
            grant = self._client_grant(request, code, client)
        return grant is not None and bool(grant.redirect_uri_allowed(redirect_uri))

    def _check_and_set_request_resource(self, request: Any) -> None:
        """DOT's RFC 8707 handling, for a code exchange with the grant this request has read."""
        if request.grant_type != "authorization_code":
            super()._check_and_set_request_resource(request)
            return
        resource = getattr(request, "resource", None)
        if isinstance(resource, str):
            body_values = [v for k, v in (getattr(request, "decoded_body", None) or []) if k == "resource"]
            if len(body_values) > 1:
                resource = body_values
        if isinstance(resource, list):
            request.resource = resource or []
        elif resource and isinstance(resource, str) and resource.strip():
            request.resource = [resource]
        else:
            request.resource = []
        self._validate_resource_uris(request, request.resource)
        grant = self._client_grant(request, request.code, request.client)
        grant_resource = (grant.resource or []) if grant is not None else []
        if request.resource and grant_resource:
            for res in request.resource:
                if res not in grant_resource:
                    raise oauth2_errors.CustomOAuth2Error(
                        error="invalid_target",
                        description=(
                            f"The requested resource '{res}' is not allowed. Token request cannot escalate "
                            "resource permissions beyond the original authorization grant"
                        ),
                        request=request,
                    )
        elif grant_resource:
            self._validate_resource_uris(request, grant_resource)
            request.resource = grant_resource

    def validate_code(self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        grant = self._client_grant(request, code, client)
        if grant is None:
            services.code_reuse_check(code=code, client=client)
            return False
        if grant.is_expired() or not grant.user.is_active:
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            request.claims = json.loads(grant.claims)
        request.idp_login = LoginContext(sid=grant.sid, auth_time=grant.auth_time, amr=tuple(grant.amr or ()))
        if grant.dpop_jkt and grant.dpop_jkt != getattr(request, "idp_dpop_jkt", ""):
            return False  # RFC 9449 10: a code bound with dpop_jkt needs a proof of that key
        # Refused when the web login that approved it has ended since.
        return not (grant.sid and services.token_revoked_reason(jti="", sid=grant.sid))

    def invalidate_authorization_code(self, client_id: str, code: str, request: Any, *args: Any, **kwargs: Any) -> None:
        if not getattr(request, "idp_code_deleted", False):
            super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)
        if not getattr(request, "idp_code_listed", False):
            self._code_spent(request, code)

    def _code_spent(self, request: Any, code: str | None = None) -> None:
        # Remembered a while: presented again, the code revokes what it was exchanged for.
        services.code_spent(
            code=code or request.code,
            jti=getattr(request, "idp_jti", ""),
            family=str(getattr(request, "idp_family", "") or ""),
        )
        request.idp_code_listed = True

    # --- Token issue ------------------------------------------------------------------------

    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> Any:
        """One transaction for what a token response writes: for a code, the grant's deletion
        (single use: a second exchange of the same code waits on the row and then finds nothing,
        so it fails and writes nothing), the ID token, the access and refresh tokens, the audit
        event and the consent's last use. (DOT's save_bearer_token is this method's body inside
        a transaction of its own; its grant deletion ran after the commit.)"""
        # A refresh token only for `offline_access` (OIDC Core 11), never for client credentials.
        if "refresh_token" in token and conf.SCOPE_OFFLINE not in (request.scopes or []):
            token.pop("refresh_token")
        # On PostgreSQL the new rows are written together with the audit event, in one statement
        # at the end (idp.storage): the ids that other new rows refer to are taken first.
        batch = storage.batching()
        pending = getattr(request, "idp_id_token", None)
        pending = pending if isinstance(pending, IDToken) and pending.pk is None else None
        ids_for: list[type[Any]] = []
        if batch and pending is not None:
            ids_for.append(IDToken)  # the access token refers to it
        if batch and "refresh_token" in token:
            ids_for.append(AccessToken)  # the refresh token refers to it
        # The consent's last use goes with the first statement (the one that takes the ids): the
        # write at the end then stays within psycopg's cache of converted statements (at most
        # MAX_CACHED_STATEMENT_PARAMS parameters); parsing it on every request was ~10 % of a code
        # exchange's CPU.
        user = request.user if getattr(request.user, "pk", None) else None
        touch = (
            [update_sql(Consent, {"last_used_at": timezone.now()}, user=user.pk, client=request.client.pk)]
            if batch and user is not None
            else []
        )
        request.idp_consent_touched = False
        spent = True
        with transaction.atomic():
            if request.grant_type == "authorization_code":
                grant = self._client_grant(request, request.code, request.client)
                if batch and grant is not None:
                    spent, ids = storage.spend_code(
                        grant_pk=grant.pk, client_pk=request.client.pk, ids_for=ids_for, also=touch
                    )
                    request.idp_consent_touched = bool(touch)
                else:
                    spent = bool(Grant.objects.filter(code=request.code, application=request.client).delete()[0])
                    ids = self._next_ids(request, ids_for, touch) if batch else []
            else:
                ids = self._next_ids(request, ids_for, touch) if batch else []
            if spent:
                request.idp_code_deleted = request.grant_type == "authorization_code"
                return self._save_new_rows(token, request, ids_for, ids, pending, batch, *args, **kwargs)
        # Spent meanwhile by a concurrent exchange (this one waited on the grant's row lock, then
        # deleted nothing): the code was presented twice, so the tokens the other exchange issued
        # are revoked (RFC 6749 4.1.2). Outside the rolled-back transaction, so the revocation and
        # its audit event stay; the other exchange listed them before it committed.
        services.code_reuse_check(code=request.code, client=request.client)
        raise oauth2_errors.InvalidGrantError(request=request)

    def _next_ids(self, request: Any, ids_for: list[type[Any]], touch: list[tuple[str, list[Any]]]) -> list[int]:
        if not ids_for:
            return []
        request.idp_consent_touched = bool(touch)
        return storage.next_ids(ids_for, also=touch)

    def _save_new_rows(
        self,
        token: dict[str, Any],
        request: Any,
        ids_for: list[type[Any]],
        ids: list[int],
        pending: IDToken | None,
        batch: bool,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Inside save_bearer_token's transaction: the rows of the response, with the ids taken."""
        keys = dict(zip(ids_for, ids, strict=True))
        request.idp_rows = [] if batch else None
        request.idp_access_pk = keys.get(AccessToken)
        if pending is not None:
            if batch:
                pending.pk = keys[IDToken]
                request.idp_rows.append(pending)
            else:
                pending.save()
        return self._save_bearer_token_audited(token, request, *args, **kwargs)

    def _save_bearer_token_audited(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> Any:
        refreshing = request.grant_type == "refresh_token"
        kept = getattr(request, "refresh_token_instance", None) if refreshing else None
        previous_jti = ""
        if kept is not None and not self.rotate_refresh_token(request) and kept.access_token_id:
            # Not rotated (FAPI): DOT rewrites the refresh token's access token row in place.
            previous_jti = AccessToken.objects.filter(pk=kept.access_token_id).values_list("jti", flat=True).first()
        result = self._save_bearer_token(token, request, *args, **kwargs)
        if kept is not None and previous_jti is not None and not self.rotate_refresh_token(request):
            AccessToken.objects.filter(pk=kept.access_token_id).update(
                jti=getattr(request, "idp_jti", ""), dpop_jkt=getattr(request, "idp_dpop_jkt", "")
            )
            if previous_jti:
                services.revoke_jtis([previous_jti], reason="token_refreshed")
        if getattr(request, "idp_dpop_jkt", ""):
            token["token_type"] = "DPoP"  # noqa: S105  # RFC 9449 5: the response says the token is DPoP-bound
        client = request.client
        user = request.user if getattr(request.user, "pk", None) else None
        login: LoginContext = getattr(request, "idp_login", None) or LoginContext()
        kind = EventType.OAUTH_TOKEN_REFRESHED if refreshing else EventType.OAUTH_TOKEN_ISSUED
        details = {
            "client_id": client.client_id,
            "client": client.name,
            "grant_type": request.grant_type,
            "scope": token.get("scope", ""),
            "offline": "refresh_token" in token,
            "sid": login.sid,
        }
        if request.grant_type == "authorization_code":
            # Listed before the commit: a concurrent exchange of the same code, which waits on the
            # grant's row and finds it gone once this transaction commits, then finds this entry
            # and revokes these tokens (save_bearer_token); so does any later presentation.
            self._code_spent(request)
        rows: list[Any] | None = getattr(request, "idp_rows", None)
        if rows is None:
            record(type=kind, user=user, details=details)
            services.connection_touch(user=user, client=client)
            return result
        # The new rows, the consent's last use (unless the first statement had it) and the audit
        # event: one statement.
        also = []
        if user is not None and not getattr(request, "idp_consent_touched", False):
            also.append(update_sql(Consent, {"last_used_at": timezone.now()}, user=user.pk, client=client.pk))
        record_many([audit_event(type=kind, user=user, details=details)], rows=rows, also=also)
        return result

    def _create_access_token(
        self, expires: Any, request: Any, token: dict[str, Any], source_refresh_token: Any = None
    ) -> AccessToken:
        id_token = token.get("id_token")
        pending = getattr(request, "idp_id_token", None)
        if id_token and isinstance(pending, IDToken) and pending.pk is not None:
            id_token_obj: IDToken | None = pending  # signed and saved by this request (finalize_id_token)
        else:
            id_token_obj = self._load_id_token(id_token) if id_token else None
        login: LoginContext = getattr(request, "idp_login", None) or LoginContext()
        access_token = AccessToken(
            user=request.user if getattr(request.user, "pk", None) else None,
            scope=token["scope"],
            expires=expires,
            id_token=id_token_obj,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            jti=getattr(request, "idp_jti", ""),
            sid=login.sid,
            dpop_jkt=str(getattr(request, "idp_dpop_jkt", "") or ""),
        )
        self._set_token_value(access_token, token["access_token"])
        rows: list[Any] | None = getattr(request, "idp_rows", None)
        if rows is None:
            access_token.save()
        else:
            access_token.pk = getattr(request, "idp_access_pk", None)  # set when a refresh token refers to it
            rows.append(access_token)
        return access_token

    def _create_refresh_token(
        self, request: Any, refresh_token_code: str, access_token: Any, previous_refresh_token: Any
    ) -> RefreshToken:
        # DOT's _create_refresh_token, with the login and the DPoP binding in the one INSERT.
        import uuid

        login: LoginContext = getattr(request, "idp_login", None) or LoginContext()
        # RFC 9449 5: a public client's refresh token is bound to the key of the proof (a
        # confidential client's is protected by its authentication).
        jkt = getattr(request, "idp_dpop_jkt", "") if request.client.client_type == Client.CLIENT_PUBLIC else ""
        if previous_refresh_token is not None and previous_refresh_token.dpop_jkt:
            jkt = previous_refresh_token.dpop_jkt
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=previous_refresh_token.token_family if previous_refresh_token else uuid.uuid4(),
            resource=getattr(request, "resource", []),  # RFC 8707
            sid=login.sid,
            auth_time=login.auth_time,
            amr=list(login.amr),
            dpop_jkt=jkt or "",
        )
        self._set_token_value(refresh_token, refresh_token_code)
        rows: list[Any] | None = getattr(request, "idp_rows", None)
        if rows is None:
            refresh_token.save()
        else:
            if access_token is not None and access_token.pk is None:
                raise ValueError("the refresh token's access token has no id")  # pragma: no cover
            rows.append(refresh_token)
        request.idp_family = refresh_token.token_family
        return refresh_token

    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        rt = (
            RefreshToken.objects.filter(token_checksum=_checksum(refresh_token))
            .select_related("application", "user")
            .order_by(F("revoked").desc(nulls_first=True))
            .first()
        )
        if rt is not None and rt.revoked is not None and rt.application_id == getattr(client, "pk", None):
            record(
                type=EventType.OAUTH_REFRESH_REUSE_DETECTED,
                outcome=Outcome.DENIED,
                user=rt.user,
                details={"client_id": rt.application.client_id, "client": rt.application.name, "sid": rt.sid},
            )
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        rt = request.refresh_token_instance
        if rt.sid and services.token_revoked_reason(jti="", sid=rt.sid):
            RefreshToken.revoke_family(rt.token_family)
            return False
        if not rt.user.is_active:
            return False
        if rt.dpop_jkt and rt.dpop_jkt != getattr(request, "idp_dpop_jkt", ""):
            return False  # bound to a DPoP key: a stolen refresh token is useless without it
        request.idp_login = LoginContext(sid=rt.sid, auth_time=rt.auth_time, amr=tuple(rt.amr or ()))
        return True

    # --- Client credentials ----------------------------------------------------------------

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        if grant_type == "refresh_token":
            allowed = bool(client.authorization_grant_type == Client.GRANT_AUTHORIZATION_CODE)
        else:
            allowed = bool(super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs))
        if allowed:
            self._dpop_check(client, request)
        return allowed

    def _dpop_check(self, client: Any, request: Any) -> None:
        """Every grant passes here right after client authentication: a DPoP proof for the
        token endpoint binds what is issued (request.idp_dpop_jkt); FAPI clients must send one."""
        proof = dpop_header(request)
        if proof is None:
            if client.dpop_required:
                raise DPoPProofError(dpop.ERROR_INVALID_PROOF, "This client's tokens must be DPoP-bound.", request)
            request.idp_dpop_jkt = ""
            return
        try:
            checked = dpop.verify_proof(proof, htm="POST", htu=conf.issuer() + reverse("oauth2_provider:token"))
        except dpop.DPoPError as exc:
            if exc.replayed:
                record(
                    type=EventType.DPOP_PROOF_REPLAYED,
                    outcome=Outcome.DENIED,
                    user=None,
                    details={"client_id": client.client_id, "client": client.name, "endpoint": "token"},
                )
            raise DPoPProofError(exc.error, exc.description, request) from exc
        request.idp_dpop_jkt = checked.jkt

    def rotate_refresh_token(self, request: Any) -> bool:
        # FAPI 2.0 5.3.2.1: the refresh token is sender-constrained, so it is not rotated.
        client = getattr(request, "client", None)
        if client is not None and getattr(client, "fapi", False):
            return False
        return bool(super().rotate_refresh_token(request))

    # --- Client authentication: private_key_jwt (RFC 7523) -------------------------------------

    def _load_application(self, client_id: str, request: Any) -> Client | None:
        """DOT's _load_application (the client of this request, reused when already loaded; usable
        ones only; CIMD as configured), with the row from idp.clientcache: this process keeps it
        while the client's generation in Redis is unchanged, so a save or delete of the client
        (disabled, secret rotated) is seen at once by every node."""
        current = request.client
        if current:
            if isinstance(current, Client) and current.client_id == client_id and current.is_usable(request):
                return current
            request.client = None
        client = self._grant_client(request, client_id) or clientcache.client_by_id(client_id)
        if client is None:
            found = cimd.resolve_cimd_application(client_id, request=request)
            if found is not None and found.is_usable(request):
                request.client = found
                return found  # type: ignore[no-any-return]
            return None
        client = cimd.refresh_if_stale(client, request=request)
        if not client.is_usable(request):
            return None
        request.client = client
        return client

    def _grant_client(self, request: Any, client_id: str) -> Client | None:
        """A code exchange has read its grant with the grant's client (oauthlib's dispatcher asks
        for the code's scopes before authenticating the client): when that is the client named,
        its row, read from PostgreSQL in this request, serves (it is as fresh as can be)."""
        memo = getattr(request, "idp_grant", None)
        if memo is None or getattr(request, "grant_type", None) != "authorization_code" or memo[0] != request.code:
            return None
        grant: Grant | None = memo[1]
        client = grant.application if grant is not None else None
        return client if isinstance(client, Client) and client.client_id == client_id else None

    def client_authentication_required(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        if getattr(request, "client_assertion", None) or getattr(request, "client_assertion_type", None):
            return True
        return bool(super().client_authentication_required(request, *args, **kwargs))

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        assertion = getattr(request, "client_assertion", None)
        assertion_type = getattr(request, "client_assertion_type", None)
        if assertion or assertion_type:
            return self._authenticate_assertion(request, str(assertion or ""), str(assertion_type or ""))
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        # A client registered for private_key_jwt never authenticates with a secret.
        return not request.client.uses_private_key_jwt

    def _authenticate_assertion(self, request: Any, assertion: str, assertion_type: str) -> bool:
        if assertion_type != client_auth.ASSERTION_TYPE or not assertion:
            return False
        if self._extract_basic_auth(request) or getattr(request, "client_secret", None):
            return False  # one authentication method per request (RFC 6749 2.3)
        client_id = getattr(request, "client_id", None) or client_auth.unverified_issuer(assertion)
        if not client_id or self._load_application(str(client_id), request) is None:
            return False
        client = request.client
        if not client.uses_private_key_jwt:
            return False
        try:
            client_auth.verify_assertion(assertion, client=client, endpoint_url=endpoint_url(request))
        except client_auth.AssertionInvalid as exc:
            logger.info("client assertion refused for %s: %s", client.client_id, exc)
            if "already used" in str(exc):
                record(
                    type=EventType.OAUTH_CLIENT_ASSERTION_REPLAYED,
                    outcome=Outcome.DENIED,
                    user=None,
                    details={"client_id": client.client_id, "client": client.name},
                )
            return False
        request.client_id = client.client_id
        return True

    # --- ID tokens and claims ----------------------------------------------------------------

    def finalize_id_token(
        self, id_token: dict[str, Any], token: dict[str, Any], token_handler: Any, request: Any
    ) -> str:
        login: LoginContext = getattr(request, "idp_login", None) or LoginContext()
        claims = {k: v for k, v in id_token.items() if k in ("nonce", "at_hash", "c_hash")}
        if "nonce" not in claims and request.nonce:
            claims["nonce"] = request.nonce
        signed, jti, expires = id_token_issue(
            claims=claims, user=request.user, client=request.client, login=login, scopes=list(request.scopes or [])
        )
        # Saved with the access token, in save_bearer_token's transaction (which every token
        # response that carries an ID token goes through next): not on its own, before the rest.
        obj = IDToken(
            user=request.user,
            scope=" ".join(request.scopes or []),
            expires=expires,
            jti=jti,
            application=request.client,
            sid=login.sid,
        )
        request.idp_id_token = obj
        request.access_token = obj
        request.id_token = obj
        return signed

    def _load_id_token(self, token: str) -> IDToken | None:
        from idp.tokens import InvalidProviderToken, id_token_decode

        try:
            claims = id_token_decode(token, accept_expired=False)
        except InvalidProviderToken:
            return None
        return IDToken.objects.filter(jti=claims.get("jti")).first()

    def get_claim_dict(self, request: Any) -> dict[str, Any]:
        user = request.user
        return {
            "sub": str(user.public_id),
            "email": user.email,
            "email_verified": bool(user.email_verified),
        }

    def get_discovery_claims(self, request: Any) -> list[str]:
        return ["sub", "email", "email_verified", "auth_time", "acr", "amr", "sid", "nonce", "at_hash"]

    def get_userinfo_claims(self, request: Any) -> dict[str, Any]:
        return self.get_oidc_claims(request.access_token, None, request)

    def validate_silent_login(self, request: Any) -> bool:
        # prompt=none is decided by idp.views.AuthorizeView (it has the web session; oauthlib's
        # request has no user while validating): login, max_age, acr_values and consent.
        return True

    def validate_silent_authorization(self, request: Any) -> bool:
        return True

    # --- Bearer checks (userinfo, introspection) and revocation -----------------------------

    def validate_bearer_token(self, token: str, scopes: Any, request: Any) -> bool:
        if not super().validate_bearer_token(token, scopes, request):
            return False
        access_token = request.access_token
        if isinstance(access_token, AccessToken) and access_token.dpop_jkt:
            # userinfo and introspection take bearer tokens only: a DPoP-bound token presented
            # as a bearer token is refused (RFC 9449 7.1).
            request.oauth2_error = {"error": "invalid_token", "error_description": "This token is DPoP-bound."}
            return False
        if isinstance(access_token, AccessToken):
            reason = services.token_revoked_reason(jti=access_token.jti, sid=access_token.sid)
            if reason:
                request.oauth2_error = {"error": "invalid_token", "error_description": "The login has ended."}
                return False
        return True

    def revoke_token(self, token: str, token_type_hint: str | None, request: Any, *args: Any, **kwargs: Any) -> None:
        checksum = _checksum(token)
        client_pk = getattr(request.client, "pk", None)
        access = list(AccessToken.objects.filter(token_checksum=checksum, application_id=client_pk))
        refresh = list(
            RefreshToken.objects.filter(token_checksum=checksum, application_id=client_pk, revoked__isnull=True)
        )
        jtis = [a.jti for a in access]
        for rt in refresh:
            if rt.access_token_id:
                jtis += list(AccessToken.objects.filter(pk=rt.access_token_id).values_list("jti", flat=True))
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        services.revoke_jtis(jtis, reason="token_revoked")
        if access or refresh:
            user: User | None = (access[0].user if access else refresh[0].user) if (access or refresh) else None
            record(
                type=EventType.OAUTH_TOKEN_REVOKED,
                user=user,
                details={
                    "client_id": request.client.client_id,
                    "client": request.client.name,
                    "kind": "access" if access else "refresh",
                },
            )
