"""State changes of the mobile API logins: token families, rotation, reuse detection, logout,
and the pending login between the password and the second factor (the `mfa_token`).

A login is a token family: one accounts.models.UserSession of kind "mobile" whose id is the
`sid` claim of every access token it issues. Its refresh tokens (accounts.models.RefreshToken)
rotate on every use; presenting a spent one again ends the family for everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import dpop as accounts_dpop
from accounts import services as account_services
from accounts import tokens
from accounts.models import RefreshToken, User, UserSession
from audit.events import EventType, Outcome
from audit.services import event as audit_event
from audit.services import record, record_many
from core import context
from core.net import client_ip, device_name
from core.sql import PreparedSelect, update_sql
from notifications.services import email_enqueue

logger = logging.getLogger(__name__)


class TokenRefused(Exception):
    """A refresh or logout that must be answered 401, with a stable code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    sid: str
    dpop: bool = False  # bound to a DPoP key (accounts.dpop): the token type says so (RFC 9449 5)

    def as_response(self) -> dict[str, Any]:
        token_type = "DPoP" if self.dpop else "Bearer"
        return {"access": self.access, "refresh": self.refresh, "token_type": token_type, "expires_in": self.expires_in}


def _refresh_expiry(family: UserSession) -> Any:
    now = timezone.now()
    sliding = now + timedelta(seconds=settings.JWT_REFRESH_LIFETIME_SECONDS)
    absolute = family.created_at + timedelta(seconds=settings.JWT_REFRESH_ABSOLUTE_SECONDS)
    return min(sliding, absolute)


def _refresh_new(*, family: UserSession, device_id: str) -> tuple[str, RefreshToken]:
    """A new refresh token of the family (not yet written) and its raw value."""
    raw = tokens.refresh_token_new()
    row = RefreshToken(
        family=family,
        user_id=family.user_id,
        token_hash=tokens.refresh_token_hash(raw),
        device_id=device_id[:128],
        created_at=timezone.now(),
        expires_at=_refresh_expiry(family),
    )
    return raw, row


def _spend(
    *, token: RefreshToken, successor: RefreshToken, family: UserSession, now: datetime
) -> list[tuple[str, list[Any]]]:
    """Marks the token spent (replaced by its successor) and the family seen now.

    PostgreSQL: the two UPDATEs are returned (SQL, parameters) to run with the successor's INSERT
    as one statement (refresh_rotate); elsewhere both rows are saved here and nothing is returned.
    """
    token.used_at, token.replaced_by, family.last_seen_at = now, successor, now
    if connection.vendor != "postgresql":
        token.save(update_fields=["used_at", "replaced_by"])
        family.save(update_fields=["last_seen_at"])
        return []
    return [
        update_sql(UserSession, {"last_seen_at": now}, pk=family.pk),
        update_sql(RefreshToken, {"used_at": now, "replaced_by": successor.pk}, pk=token.pk),
    ]


def _access(user: User, family: UserSession) -> tuple[str, int]:
    return tokens.access_token_issue(
        user_public_id=str(user.public_id),
        sid=str(family.id),
        amr=list(family.amr),
        auth_time=int(family.created_at.timestamp()),
        jkt=family.dpop_jkt,
    )


# --- Login ------------------------------------------------------------------------------------


def login_complete(
    *,
    request: HttpRequest,
    user: User,
    amr: list[str],
    device_id: str = "",
    device_label: str = "",
    extra: dict[str, Any] | None = None,
    also: Sequence[tuple[str, Sequence[Any]]] = (),
) -> TokenPair:
    """Starts a token family for a login whose password (and factor, if needed) were proven.
    A DPoP proof on this request binds the family (required under API_REQUIRE_DPOP).

    The family, its refresh token, the two audit events, `last_login` and `also` (the login
    stages' UPDATEs, accounts.pipeline.Stage.login_writes): one statement."""
    jkt = accounts_dpop.token_request_jkt(request)  # before anything is written: a refusal changes nothing
    ctx = context.current()
    now = timezone.now()
    name = (device_label or device_name(request.META.get("HTTP_USER_AGENT", "")) or "Mobile app")[:120]
    with transaction.atomic(savepoint=False):
        family = UserSession(
            user=user,
            kind=UserSession.Kind.MOBILE,
            ip=client_ip(request),
            ua_family=ctx.ua_family[:64],
            device_name=name,
            country=ctx.country[:8],
            amr=amr,
            created_at=now,
            last_seen_at=now,
            dpop_jkt=jkt,
        )
        refresh, refresh_row = _refresh_new(family=family, device_id=device_id)
        access, lifetime = _access(user, family)
        sid = str(family.id)
        # The login's rows, its two audit events and the UPDATEs: one statement (audit.services.record_many).
        record_many(
            [
                audit_event(
                    type=EventType.LOGIN_SUCCEEDED,
                    user=user,
                    details={"sid": sid, "kind": "mobile", "amr": amr, "channel": "api", **(extra or {})},
                ),
                audit_event(type=EventType.TOKEN_ISSUED, user=user, details={"sid": sid, "amr": amr}),
            ],
            rows=[family, refresh_row],
            also=[account_services.last_login_update(request=request, user=user), *also],
        )
        # Django's login signal: resets the axes failure counter (last_login is written above).
        user_logged_in.send(sender=User, request=request, user=user)
    return TokenPair(access=access, refresh=refresh, expires_in=lifetime, sid=sid, dpop=bool(jkt))


# --- Refresh rotation and reuse detection ---------------------------------------------------------


def _reuse_detected(*, token: RefreshToken) -> None:
    """A spent refresh token came back: someone holds a copy. End the whole family."""
    family = token.family
    user = token.user
    with transaction.atomic():
        was_live = family.ended_at is None
        RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(revoked_at=timezone.now())
        record(
            type=EventType.TOKEN_REUSE_DETECTED,
            user=user,
            outcome=Outcome.DENIED,
            reason="refresh_reuse",
            details={"sid": str(family.id), "kind": "mobile", "device_name": family.device_name, "was_live": was_live},
        )
        account_services.session_end(user_session=family, reason="refresh_reuse", actor=user)
        if was_live:
            email_enqueue(
                to=user.email,
                template="token_reuse",
                context={"user": user, "device_name": family.device_name, "when": timezone.now()},
                purpose="token_reuse",
                user=user,
            )


# The presented token, locked with its family (of two refreshes of one family, the second waits),
# with the user: compiled once (core.sql), as compiling this join cost more than running it.
_TOKEN_FOR_ROTATION: PreparedSelect[RefreshToken] = PreparedSelect(
    lambda token_hash: (
        RefreshToken.objects.select_for_update(of=("self", "family"))
        .select_related("family", "user")
        .filter(token_hash=token_hash)
        .order_by()[:1]
    ),
    "\x00sample-token-hash",
)


def refresh_rotate(*, raw: str, dpop_jkt: str = "") -> TokenPair:
    """Spends the presented refresh token and issues a new pair, atomically.

    The row is locked (SELECT ... FOR UPDATE): of two refreshes with one token, the second
    waits, then finds it spent, which is treated as theft. A family bound to a DPoP key refreshes
    only with a proof of that key (`dpop_jkt`, from accounts.dpop); an unbound family presented
    with a proof is bound from now on.
    """
    token_hash = tokens.refresh_token_hash(raw)
    reused: RefreshToken | None = None
    with transaction.atomic():
        # One statement locks the token and its family (of two refreshes of one family, the
        # second waits here) and reads the user.
        token = _TOKEN_FOR_ROTATION.first(token_hash)
        if token is None:
            raise TokenRefused("token_not_valid", "The refresh token is not valid.")
        if token.used_at is not None:
            reused = token
        else:
            family = token.family
            user = token.user
            now = timezone.now()
            if token.revoked_at is not None or family.ended_at is not None:
                raise TokenRefused("token_revoked", "This login has ended. Please log in again.")
            if token.expires_at <= now:
                raise TokenRefused("token_expired", "The refresh token has expired. Please log in again.")
            if not user.is_active:
                account_services.session_end(user_session=family, reason="account_disabled")
                raise TokenRefused("token_revoked", "This login has ended. Please log in again.")
            if family.dpop_jkt and family.dpop_jkt != dpop_jkt:
                # A stolen refresh token without the key: refused, and the token stays usable by its owner.
                raise TokenRefused("invalid_dpop_proof", "This refresh token needs a DPoP proof of its key.")
            if dpop_jkt and not family.dpop_jkt:
                family.dpop_jkt = dpop_jkt
                UserSession.objects.filter(pk=family.pk).update(dpop_jkt=dpop_jkt)
            raw_new, successor = _refresh_new(family=family, device_id=token.device_id)
            spend = _spend(token=token, successor=successor, family=family, now=now)
            access, lifetime = _access(user, family)
            # The successor, the spent token, the family's last_seen_at and the audit event: one
            # statement (data-modifying CTEs on PostgreSQL).
            record_many(
                [audit_event(type=EventType.TOKEN_REFRESHED, user=user, details={"sid": str(family.id)})],
                rows=[successor],
                also=spend,
            )
            return TokenPair(
                access=access, refresh=raw_new, expires_in=lifetime, sid=str(family.id), dpop=bool(family.dpop_jkt)
            )
    # Outside the rotation's transaction, so the revocation commits although the answer is 401.
    _reuse_detected(token=reused)
    raise TokenRefused("token_reused", "This refresh token was already used. The login has been ended.")


# --- Logout ------------------------------------------------------------------------------------


def logout(*, raw: str, user: User | None = None) -> None:
    """Ends the family of the presented refresh token. A spent token is reuse (theft)."""
    token = (
        RefreshToken.objects.select_related("family", "user").filter(token_hash=tokens.refresh_token_hash(raw)).first()
    )
    if token is None or (user is not None and token.user_id != user.pk):
        raise TokenRefused("token_not_valid", "The refresh token is not valid.")
    if token.used_at is not None:
        _reuse_detected(token=token)
        raise TokenRefused("token_reused", "This refresh token was already used. The login has been ended.")
    family = token.family
    with transaction.atomic():
        if family.ended_at is None:
            record(type=EventType.LOGOUT, user=token.user, details={"sid": str(family.id), "kind": "mobile"})
            record(
                type=EventType.TOKEN_REVOKED,
                user=token.user,
                reason="logout",
                details={"sid": str(family.id)},
            )
        RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(revoked_at=timezone.now())
        account_services.session_end(user_session=family, reason="logout", actor=token.user)


def session_end_for_user(*, user: User, session_id: str) -> None:
    """DELETE /sessions/{id}: ends one web session or app login of the user; others' are not found."""
    with transaction.atomic():
        user_session = UserSession.objects.filter(user=user, id=session_id, ended_at__isnull=True).first()
        if user_session is None:
            raise UserSession.DoesNotExist
        if user_session.kind == UserSession.Kind.MOBILE:
            RefreshToken.objects.filter(family=user_session, revoked_at__isnull=True).update(revoked_at=timezone.now())
            record(type=EventType.TOKEN_REVOKED, user=user, reason="ended_by_user", details={"sid": session_id})
        account_services.session_end(user_session=user_session, reason="ended_by_user", actor=user)
