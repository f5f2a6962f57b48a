"""The provider's state changes: consent, revocation of grants and tokens, single sign-out, clients.

Every change writes its audit event (with `client_id` in the details) in the same transaction.
JWT access tokens verify without the database, so revoking one also lists its `jti` in Redis
(for as long as it could still verify); ending a login lists its `sid` (accounts.revocation).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts import revocation
from accounts.models import User, UserSession
from audit.events import EventType, Outcome
from audit.services import record
from core.cached import read_many
from idp import conf
from idp.models import AccessToken, Client, Consent, Grant, IDToken, RefreshToken, generate_client_secret
from notifications.services import webhook_builder_register, webhook_enqueue

logger = logging.getLogger(__name__)

_JTI_PREFIX = "idp-revoked-jti:"
BACKCHANNEL_PURPOSE = "oidc_backchannel_logout"


class ClientError(Exception):
    """Bad input for a client registration (the command and the admin show the message)."""


# --- The revocation list for single tokens (jti) ------------------------------------------


def _jti_ttl() -> int:
    return conf.access_lifetime() + 120


def revoked_jti_key(jti: str) -> str:
    """The cache key of a provider access token's revocation entry (by its jti)."""
    return f"{_JTI_PREFIX}{jti}"


def revoke_jtis(jtis: Iterable[str], *, reason: str) -> None:
    values = {revoked_jti_key(jti): reason or "revoked" for jti in jtis if jti}
    if values:
        cache.set_many(values, timeout=_jti_ttl())


def token_revoked_reason(*, jti: str, sid: str) -> str | None:
    """Why a provider access token no longer counts (its jti revoked, or its login ended), or None.
    Answered by the request's prefetched reads where they hold the keys (core.cached.read_many)."""
    key = revoked_jti_key(jti)
    found = read_many([key]).get(key) if jti else None  # a grant or refresh token has no jti
    if found:
        return str(found)
    if sid:
        return revocation.revoked_reason(sid)
    return None


def may_introspect(caller: Client | None, token: AccessToken) -> bool:
    """RFC 7662 4: a client learns about the tokens issued to itself; a client named in
    IDP_INTROSPECTION_CLIENTS (a resource server receiving other clients' tokens) about any."""
    if caller is None:
        return False
    return token.application_id == caller.pk or caller.client_id in settings.IDP_INTROSPECTION_CLIENTS


# --- Authorization codes presented twice (RFC 6749 4.1.2, OAuth 2.1 4.1.3) --------------------

_SPENT_PREFIX = "idp-spent-code:"


def _code_key(code: str) -> str:
    import hashlib

    return _SPENT_PREFIX + hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def code_spent(*, code: str, jti: str, family: str) -> None:
    cache.set(_code_key(code), {"jti": jti, "family": family}, timeout=max(600, _jti_ttl()))


def code_reuse_check(*, code: str, client: Client) -> None:
    """A code that was already exchanged is presented again: someone else has it, so the tokens
    it gave are revoked (the access token by jti, the refresh token's whole family)."""
    spent = cache.get(_code_key(code))
    if not spent:
        return
    cache.delete(_code_key(code))
    with transaction.atomic():
        user = None
        family = spent.get("family") or ""
        if family:
            user = RefreshToken.objects.filter(token_family=family).values_list("user", flat=True).first()
            RefreshToken.revoke_family(family)
        revoke_jtis([spent.get("jti") or ""], reason="code_reused")
        AccessToken.objects.filter(jti=spent.get("jti") or "-").delete()
        record(
            type=EventType.OAUTH_CODE_REUSE_DETECTED,
            outcome=Outcome.DENIED,
            user=User.objects.filter(pk=user).first() if user else None,
            details={"client_id": client.client_id, "client": client.name},
        )


# --- Consent and connected apps -------------------------------------------------------------


def consent_covers(*, user: User, client: Client, scopes: Iterable[str]) -> bool:
    consent = Consent.objects.filter(user=user, client=client).first()
    return consent is not None and set(scopes) <= set(consent.scope.split())


def consent_record(*, user: User, client: Client, scopes: Iterable[str], shown: bool) -> Consent:
    """The user allowed `client` these scopes (through the consent page when `shown`)."""
    wanted = sorted(set(scopes))
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            user=user, client=client, defaults={"scope": " ".join(wanted)}
        )
        if not created:
            merged = sorted(set(consent.scope.split()) | set(wanted))
            if merged != consent.scope.split():
                consent.scope = " ".join(merged)
                consent.save(update_fields=["scope"])
        if shown:
            record(
                type=EventType.OAUTH_CONSENT_GIVEN,
                user=user,
                details={"client_id": client.client_id, "client": client.name, "scope": " ".join(wanted)},
            )
    return consent


def consent_denied(*, user: User, client: Client, scopes: Iterable[str]) -> None:
    record(
        type=EventType.OAUTH_CONSENT_DENIED,
        outcome=Outcome.DENIED,
        user=user,
        details={"client_id": client.client_id, "client": client.name, "scope": " ".join(sorted(set(scopes)))},
    )


def connection_touch(*, user: Any, client: Client) -> None:
    if getattr(user, "pk", None):
        Consent.objects.filter(user=user, client=client).update(last_used_at=timezone.now())


def grant_revoke(*, user: User, client_pk: int, actor: User | None = None, reason: str = "revoked_by_user") -> bool:
    """Disconnects an app: every token the user's grants to it hold stops at once. Idempotent."""
    with transaction.atomic():
        client = Client.objects.filter(pk=client_pk).first()
        if client is None:
            return False
        consent = Consent.objects.filter(user=user, client=client).first()
        revoked = _tokens_revoke(
            RefreshToken.objects.filter(user=user, application=client),
            AccessToken.objects.filter(user=user, application=client),
            reason=reason,
        )
        Grant.objects.filter(user=user, application=client).delete()
        if consent is None and not revoked:
            return False
        if consent is not None:
            consent.delete()
        record(
            type=EventType.OAUTH_GRANT_REVOKED,
            user=user,
            actor=actor or user,
            reason=reason,
            details={"client_id": client.client_id, "client": client.name, "revoked_count": revoked},
        )
    return True


def _tokens_revoke(refresh_tokens: Any, access_tokens: Any, *, reason: str) -> int:
    """Revokes refresh tokens (their whole families) and deletes access tokens, listing every jti."""
    families = set(refresh_tokens.filter(revoked__isnull=True).values_list("token_family", flat=True))
    jtis = list(access_tokens.values_list("jti", flat=True))
    count = len(jtis)
    for family in families:
        if family:
            RefreshToken.revoke_family(family)
    now = timezone.now()
    count += refresh_tokens.filter(revoked__isnull=True).update(revoked=now, access_token=None)
    access_tokens.delete()
    revoke_jtis(jtis, reason=reason)
    return count


def tokens_revoke_for_login(*, sid: str, reason: str) -> int:
    """A web login ended: the provider tokens it authorised go too (refresh tokens included)."""
    return _tokens_revoke(RefreshToken.objects.filter(sid=sid), AccessToken.objects.filter(sid=sid), reason=reason)


def token_revoked_audit(*, request: Any, kind: str) -> None:
    client = getattr(request, "client", None)
    record(
        type=EventType.OAUTH_TOKEN_REVOKED,
        user=getattr(request, "idp_revoked_user", None),
        details={"client_id": getattr(client, "client_id", ""), "kind": kind},
    )


# --- Single sign-out -------------------------------------------------------------------------


def applications_of_login(*, sid: str) -> set[int]:
    """The clients (ids) this web login signed in to: its codes, ID, access and refresh tokens, in one query."""
    parts = [m.objects.filter(sid=sid).values_list("application_id", flat=True) for m in (AccessToken, RefreshToken)]
    found = (
        IDToken.objects.filter(sid=sid)
        .values_list("application_id", flat=True)
        .union(Grant.objects.filter(sid=sid).values_list("application_id", flat=True), *parts)
    )
    return {int(pk) for pk in found if pk is not None}


def clients_of_login(*, sid: str, ids: set[int] | None = None) -> list[Client]:
    """Clients with a back-channel logout URI that this web login signed in to."""
    ids = applications_of_login(sid=sid) if ids is None else ids
    if not ids:
        return []
    return list(Client.objects.filter(pk__in=ids).exclude(backchannel_logout_uri="").order_by("pk"))


def backchannel_logout_enqueue(*, user_session: UserSession, reason: str, ids: set[int] | None = None) -> int:
    """Queues a logout token for every client the login used (inside the caller's transaction)."""
    clients = clients_of_login(sid=str(user_session.id), ids=ids)
    user = user_session.user
    for client in clients:
        webhook_enqueue(
            url=client.backchannel_logout_uri,
            payload={"client_id": client.client_id, "sub": str(user.public_id), "sid": str(user_session.id)},
            purpose=BACKCHANNEL_PURPOSE,
            user=user,
        )
        record(
            type=EventType.OIDC_BACKCHANNEL_LOGOUT_QUEUED,
            user=user,
            reason=reason,
            details={"client_id": client.client_id, "client": client.name, "sid": str(user_session.id)},
        )
    return len(clients)


def _backchannel_fields(payload: dict[str, Any]) -> dict[str, str]:
    from idp.tokens import logout_token_issue

    return {
        "logout_token": logout_token_issue(
            client_id=str(payload["client_id"]), sub=str(payload["sub"]), sid=str(payload["sid"])
        )
    }


def register_outbox_builders() -> None:
    webhook_builder_register(BACKCHANNEL_PURPOSE, _backchannel_fields)


def login_ended(*, user_session: UserSession, reason: str, ids: set[int] | None = None) -> None:
    """accounts.signals.session_ended: revoke the login's provider tokens, tell its clients (`ids`: the
    clients it used, when the caller has looked them up already)."""
    sid = str(user_session.id)
    ids = applications_of_login(sid=sid) if ids is None else ids
    if not ids:
        return  # the login never signed in to a client (most web logins): nothing to revoke or tell
    tokens_revoke_for_login(sid=sid, reason=reason)
    backchannel_logout_enqueue(user_session=user_session, reason=reason, ids=ids)


# --- Clients ---------------------------------------------------------------------------------

KINDS = {"confidential": Client.CLIENT_CONFIDENTIAL, "public": Client.CLIENT_PUBLIC}
GRANTS = {
    "authorization-code": Client.GRANT_AUTHORIZATION_CODE,
    "client-credentials": Client.GRANT_CLIENT_CREDENTIALS,
}


def client_create(
    *,
    name: str,
    kind: str,
    grant: str,
    redirect_uris: list[str] | None = None,
    scopes: str = "openid",
    trusted: bool = False,
    backchannel_logout_uri: str = "",
    post_logout_redirect_uris: list[str] | None = None,
    owner: User | None = None,
    client_id: str | None = None,
    secret: str | None = None,
    actor: User | None = None,
    fapi: bool = False,
    require_par: bool = False,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str = "",
) -> tuple[Client, str]:
    """Registers a client; returns it and its plaintext secret ("" for a public client or one that
    authenticates with private_key_jwt), shown once. A JWKS (inline or URI) makes a confidential
    client use private_key_jwt; the FAPI 2.0 profile requires it for confidential clients."""
    from django.core.exceptions import ValidationError

    from idp.scopes import ClientScopes

    if kind not in KINDS:
        raise ClientError("--kind must be confidential or public")
    if grant not in GRANTS:
        raise ClientError("--grant must be authorization-code or client-credentials")
    known = set(ClientScopes().get_all_scopes())
    wanted = scopes.split()
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ClientError(f"unknown scope(s): {' '.join(unknown)} (known: {' '.join(sorted(known))})")
    if grant == "client-credentials" and {"openid", "offline_access", "email"} & set(wanted):
        raise ClientError("a client-credentials client has no user: openid, email and offline_access do not apply")
    if (jwks is not None or jwks_uri) and KINDS[kind] != Client.CLIENT_CONFIDENTIAL:
        raise ClientError("--jwks-uri / --jwks-file are for confidential clients (private_key_jwt)")
    private_key_jwt = KINDS[kind] == Client.CLIENT_CONFIDENTIAL and (jwks is not None or bool(jwks_uri))
    if fapi and KINDS[kind] == Client.CLIENT_CONFIDENTIAL and not private_key_jwt:
        raise ClientError(
            "a FAPI 2.0 confidential client authenticates with private_key_jwt: give --jwks-uri or --jwks-file"
        )
    if fapi and grant != "authorization-code":
        raise ClientError("the FAPI 2.0 profile here covers the authorization-code grant")
    if fapi:
        from accounts import eckey

        if not eckey.configured():
            raise ClientError("FAPI 2.0 clients get ES256 tokens: set JWT_EC_PRIVATE_KEY(_FILE) first")
    plaintext = ""
    if KINDS[kind] == Client.CLIENT_CONFIDENTIAL and not private_key_jwt:
        plaintext = secret or generate_client_secret()
    client = Client(
        name=name.strip(),
        client_type=KINDS[kind],
        authorization_grant_type=GRANTS[grant],
        redirect_uris=" ".join(redirect_uris or []),
        post_logout_redirect_uris=" ".join(post_logout_redirect_uris or []),
        allowed_scopes=" ".join(wanted),
        skip_authorization=trusted,
        backchannel_logout_uri=backchannel_logout_uri,
        algorithm=Client.RS256_ALGORITHM,
        client_secret=plaintext,
        user=owner,
        fapi=fapi,
        require_par=require_par,
        token_endpoint_auth_method="private_key_jwt" if private_key_jwt else "",
        jwks=jwks,
        jwks_uri=jwks_uri,
    )
    if client_id:
        client.client_id = client_id
    if not client.name:
        raise ClientError("--name is required")
    try:
        client.full_clean(exclude=["client_secret"])
    except ValidationError as exc:
        raise ClientError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
    with transaction.atomic():
        client.save()
        client_audit(client=client, event=EventType.OAUTH_CLIENT_CREATED, actor=actor)
    return client, plaintext


def client_audit(*, client: Client, event: EventType, actor: Any = None, changed: list[str] | None = None) -> None:
    details: dict[str, Any] = {
        "client_id": client.client_id,
        "client": client.name,
        "kind": client.client_type,
        "grant": client.authorization_grant_type,
        "fapi": bool(client.fapi),
        "require_par": bool(client.require_par),
        "auth_method": client.token_endpoint_auth_method or "client_secret",
    }
    if changed:
        details["changed"] = sorted(changed)
    record(type=event, user=None, actor=actor, details=details)


def client_tokens_revoke(*, client: Client, reason: str = "client_disabled") -> int:
    """Every token of a client stops at once (before it is disabled or deleted: its JWTs would
    otherwise verify until they expire)."""
    with transaction.atomic():
        return _tokens_revoke(
            RefreshToken.objects.filter(application=client),
            AccessToken.objects.filter(application=client),
            reason=reason,
        )


def client_secret_rotate(*, client: Client, actor: Any = None) -> str:
    plaintext = generate_client_secret()
    with transaction.atomic():
        client.client_secret = plaintext
        client.save(update_fields=["client_secret", "updated"])
        client_audit(client=client, event=EventType.OAUTH_CLIENT_SECRET_ROTATED, actor=actor)
    return plaintext
