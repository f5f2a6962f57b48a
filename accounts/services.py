"""Accounts: sign-up, email verification, the password check, sessions and password flows.

The password check and session bookkeeping are shared by the web pages and the JSON API:
one service, two front ends.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from axes.handlers.proxy import AxesProxyHandler
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.db import connection, transaction
from django.db.models import FilteredRelation, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import lockout, revocation, security
from accounts.backends import normalize_email
from accounts.models import User, UserSession
from accounts.selectors import live_sessions
from accounts.signals import password_changed, session_ended
from audit.events import EventType, Outcome
from audit.services import record
from core import context
from core.crypto import keyed_hash
from core.errors import DomainError
from core.net import client_ip
from core.sql import PreparedSelect, update_sql
from notifications.services import email_enqueue

logger = logging.getLogger(__name__)

EMAIL_VERIFY_SALT = "accounts.email-verify"


class AccountError(DomainError):
    """A refusal from an accounts service, with a message safe to show the user."""

    code = "account_refused"


# --- Users ----------------------------------------------------------------------------


def user_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    phone: str = "",
    email_verified: bool = False,
    actor: User | None = None,
) -> User:
    """Creates a customer. Validates the password against the configured validators."""
    email = normalize_email(email)
    with transaction.atomic():
        if User.objects.filter(email=email).exists():
            raise AccountError("An account with this email address already exists.")
        user = User(email=email, full_name=full_name, phone=phone, email_verified=email_verified)
        if password:
            validate_password(password, user)
            user.set_password(password)
            user.password_changed_at = timezone.now()
        else:
            user.set_unusable_password()
        user.save()
        _add_to_group(user, "customer")
        if actor is not None:
            record(type=EventType.ACCOUNT_CREATED_BY_STAFF, user=user, actor=actor)
    return user


def _add_to_group(user: User, name: str) -> None:
    from django.contrib.auth.models import Group

    group = Group.objects.filter(name=name).first()
    if group is not None:
        user.groups.add(group)


def email_verification_link(user: User) -> str:
    token = signing.dumps({"u": str(user.public_id), "e": user.email}, salt=EMAIL_VERIFY_SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("accounts:verify_email", kwargs={"token": token})


def _send_verification(user: User) -> None:
    email_enqueue(
        to=user.email,
        template="email_verification",
        context={"user": user, "link": email_verification_link(user)},
        purpose="email_verification",
        user=user,
    )


def user_signup(*, email: str, password: str, full_name: str = "") -> User | None:
    """Signs up a customer and sends the verification link.

    An email already registered gets a notice instead, and the caller shows the same page
    either way, so sign-up does not reveal which addresses have accounts. Nor does the work
    (issue 13): for a taken address the new account is still created, password validated and
    argon2-hashed, with its group, inside a savepoint that is then rolled back, so both paths run
    the same statements and the same hash (tests/accounts/test_enumeration_work.py).
    """
    email = normalize_email(email)
    with transaction.atomic():
        existing = User.objects.filter(email=email).first()
        if existing is not None:
            _signup_equal_work(password=password, full_name=full_name)
            record(type=EventType.SIGNUP, outcome=Outcome.DENIED, user=existing, reason="email_in_use")
            email_enqueue(
                to=existing.email,
                template="signup_existing",
                context={"user": existing, "login_url": settings.PUBLIC_BASE_URL + reverse("accounts:login")},
                purpose="signup_existing",
                user=existing,
            )
            return None
        with transaction.atomic():
            user = user_create(email=email, password=password, full_name=full_name)
        record(type=EventType.SIGNUP, user=user)
        _send_verification(user)
    return user


def _signup_equal_work(*, password: str, full_name: str) -> None:
    """What creating an account costs, undone: a stand-in address, rolled back to the savepoint."""
    import uuid

    from django.core.exceptions import ValidationError

    savepoint = transaction.savepoint()
    try:
        user_create(email=f"{uuid.uuid4().hex}@signup.invalid", password=password, full_name=full_name)
    except (AccountError, ValidationError):
        pass
    transaction.savepoint_rollback(savepoint)


def email_verification_resend(*, user: User) -> None:
    if not user.email_verified:
        with transaction.atomic():
            _send_verification(user)


def email_verify(*, token: str) -> User:
    """Marks the address verified. A link works once and expires after EMAIL_VERIFICATION_MAX_AGE."""
    try:
        data = signing.loads(token, salt=EMAIL_VERIFY_SALT, max_age=settings.EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise AccountError("This verification link has expired. Log in to get a new one.") from exc
    except signing.BadSignature as exc:
        raise AccountError("This verification link is not valid.") from exc
    with transaction.atomic():
        user = User.objects.select_for_update().filter(public_id=data.get("u"), email=data.get("e")).first()
        if user is None:
            raise AccountError("This verification link is not valid.")
        if user.email_verified:
            raise AccountError("This link has already been used. Your email address is verified.")
        user.email_verified = True
        user.save(update_fields=["email_verified"])
        record(type=EventType.EMAIL_VERIFIED, user=user)
    return user


# --- The password check ------------------------------------------------------------------

PasswordStatus = Literal["ok", "invalid", "locked", "rate_limited", "captcha_required", "unverified"]


@dataclass
class PasswordCheck:
    status: PasswordStatus
    user: User | None = None
    retry_at: datetime | None = None
    captcha_error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def retry_after_seconds(self) -> int | None:
        if self.retry_at is None:
            return None
        return max(1, int((self.retry_at - timezone.now()).total_seconds()))


def _credentials(email: str) -> dict[str, str]:
    return {"username": email}


def _lockout_retry_at(request: HttpRequest, *, email: str) -> datetime:
    handler = AxesProxyHandler.get_implementation()
    until = handler.locked_until(request, _credentials(email)) if hasattr(handler, "locked_until") else None
    return until or timezone.now() + settings.AXES_COOLOFF_TIME


def _is_locked(request: HttpRequest, email: str) -> bool:
    return bool(AxesProxyHandler.is_locked(request, _credentials(email)))


@functools.cache
def _user_by_email(related: tuple[str, ...], joins: tuple[tuple[str, str, str], ...] = ()) -> PreparedSelect[User]:
    # Compiled once (core.sql): the join of the stages' rows cost more CPU to compile than to run.
    def build(email: str, *values: str) -> Any:
        queryset = User.objects.all()
        if joins:
            queryset = queryset.annotate(
                **{
                    name: FilteredRelation(relation, condition=Q(**{f"{relation}__{field}": value}))
                    for (name, relation, field), value in zip(joins, values, strict=True)
                }
            )
        return queryset.select_related(*related, *(name for name, _, _ in joins)).filter(email=email).order_by()[:1]

    return PreparedSelect(build, "\x00sample@email", *(f"\x00sample-join-{i}" for i in range(len(joins))))


def user_for_login(email: str, joins: tuple[tuple[str, str, str, str], ...] = ()) -> User | None:
    """The account an email names, with what the login stages read (one query: see
    pipeline.user_related), and the stages' rows of `joins` (pipeline.user_joins)."""
    from accounts import pipeline

    if not email:
        return None
    shape = tuple((name, relation, field) for name, relation, field, _ in joins)
    user = _user_by_email(pipeline.user_related(), shape).first(email, *(value for *_, value in joins))
    if user is not None:
        # Stages may trust the related rows loaded with it (they are this request's).
        setattr(user, pipeline.LOADED_FOR_LOGIN, True)
        setattr(user, pipeline.LOADED_JOINS, {name: value for name, _, _, value in joins})
    return user


def password_check(
    *,
    request: HttpRequest,
    email: str,
    password: str,
    captcha_payload: str | None = None,
    channel: Literal["web", "api", "oidc"] = "web",
    user: User | None = None,
    captcha: bool = True,
    failure_event: EventType = EventType.LOGIN_FAILED,
    user_joins: tuple[tuple[str, str, str, str], ...] = (),
) -> PasswordCheck:
    """Rate limit, CAPTCHA, lockout, then the password; audits every refusal.

    The one password check: the login page, the API login, the identity provider and
    re-authentication (`user` given: the password must be that user's). The 6th attempt within the
    lockout is refused even with the right password, and the password is not even checked while
    the account is locked for this IP. Unknown emails still run the hasher. Re-authentication
    (captcha=False) skips the CAPTCHA: its session already passed one login; the rate limit and
    the lockout still count its attempts with the login page's.
    """
    email = normalize_email(email)[:254]
    ip = client_ip(request)
    known = user if user is not None else user_for_login(email, user_joins)
    if user is not None and user.email != email:
        known = user
        email = user.email
    details = {"channel": channel}
    # The rate limit's count and the counters the checks below read: one Redis round trip.
    security.login_prefetch(
        request,
        email=email,
        ip=ip,
        lockout_keys=lockout.prefetch_keys(request, _credentials(email)),
        user_pk=known.pk if known is not None else None,
    )

    if security.rate_limited(request, name="login_ip"):
        record(type=EventType.RATE_LIMITED, outcome=Outcome.DENIED, user=known, reason="login_ip", details=details)
        return PasswordCheck("rate_limited", retry_at=timezone.now() + timedelta(seconds=60))

    if _is_locked(request, email):
        retry_at = _lockout_retry_at(request, email=email)
        record(type=EventType.LOGIN_FAILED, outcome=Outcome.DENIED, user=known, reason="locked", details=details)
        return PasswordCheck("locked", user=known, retry_at=retry_at)

    if captcha and security.captcha_required(email=email, ip=ip, request=request):
        result = security.captcha_verify(captcha_payload or "")
        if not result.ok:
            if captcha_payload:
                record(
                    type=EventType.CAPTCHA_FAILED,
                    outcome=Outcome.FAILURE,
                    user=known,
                    reason=result.reason[:64],
                    details=details,
                )
            return PasswordCheck("captcha_required", captcha_error=result.reason)

    if known is None:
        User().set_password(password)  # the same argon2 work as for a real account
        verified = False
    else:
        verified = bool(email and known.check_password(password))
    if not verified or known is None or not known.is_active:
        with transaction.atomic():
            user_login_failed.send(sender=__name__, credentials=_credentials(email), request=request)
            security.failure_recorded(email=email, ip=ip)
            record(
                type=failure_event,
                outcome=Outcome.FAILURE,
                user=known,
                reason="bad_credentials" if known is None or known.is_active else "inactive",
                details=details,
            )
            if _is_locked(request, email):
                record(
                    type=EventType.LOCKOUT,
                    outcome=Outcome.DENIED,
                    user=known,
                    reason=f"{settings.AXES_FAILURE_LIMIT} failed passwords",
                    details=details,
                )
                return PasswordCheck("locked", user=known, retry_at=_lockout_retry_at(request, email=email))
        return PasswordCheck("invalid")

    security.failures_cleared(email=email, request=request)
    if not known.email_verified:
        record(
            type=EventType.LOGIN_FAILED, outcome=Outcome.DENIED, user=known, reason="email_unverified", details=details
        )
        return PasswordCheck("unverified", user=known)
    return PasswordCheck("ok", user=known)


_LAST_LOGIN_WRITTEN = "_last_login_written"


def last_login_update(*, request: HttpRequest, user: User) -> tuple[str, list[Any]]:
    """The UPDATE of `last_login` (set on the object) for the caller to run with its own statement
    (the API login's rows); last_login_stamp then leaves this login out."""
    user.last_login = timezone.now()
    setattr(request, _LAST_LOGIN_WRITTEN, user.pk)
    return update_sql(User, {"last_login": user.last_login}, pk=user.pk)


def last_login_stamp(sender: Any, user: Any, **kwargs: Any) -> None:
    """user_logged_in receiver in place of django.contrib.auth's update_last_login: the same
    column, set on the object and written with one UPDATE without save() (AccountsConfig.ready),
    unless the login wrote it with its own rows (last_login_update).
    The user cache ignores last_login (accounts.usercache), so no invalidation is due."""
    if getattr(user, "pk", None) is None:
        return
    request = kwargs.get("request")
    if request is not None and getattr(request, _LAST_LOGIN_WRITTEN, None) == user.pk:
        return
    user.last_login = timezone.now()
    sql, params = update_sql(User, {"last_login": user.last_login}, pk=user.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- Sessions (web) and the session registry -----------------------------------------------


def session_key_hash(session_key: str) -> str:
    return keyed_hash(session_key, purpose="session-key")


def session_start(
    *, request: HttpRequest, user: User, amr: list[str], extra: dict[str, Any] | None = None
) -> UserSession:
    """Logs the user in on the web: a new session key, a registry row, the session limit.

    Called only by the login pipeline's finish (accounts/pipeline.py), for every path.
    """
    from accounts.authn import session_authenticated

    ctx = context.current()
    with transaction.atomic(savepoint=False):
        login(request, user, backend="accounts.backends.EmailBackend")
        now = timezone.now()
        user_session = UserSession.objects.create(
            user=user,
            kind=UserSession.Kind.WEB,
            session_key_hash=session_key_hash(request.session.session_key or ""),
            ip=client_ip(request),
            ua_family=ctx.ua_family[:64],
            device_name=_device_name(request),
            country=ctx.country,
            amr=amr,
            created_at=now,
            last_seen_at=now,
        )
        request.session["sid"] = str(user_session.id)
        request.session["touched"] = now.timestamp()
        session_authenticated(request, amr=amr, method="login", login=True)
        record(
            type=EventType.LOGIN_SUCCEEDED,
            user=user,
            details={"sid": str(user_session.id), "kind": "web", "amr": amr, **(extra or {})},
        )
        _enforce_session_limit(user=user, keep=user_session)
    return user_session


def _device_name(request: HttpRequest) -> str:
    from core.net import device_name

    return device_name(request.META.get("HTTP_USER_AGENT", ""))[:120]


def _enforce_session_limit(*, user: User, keep: UserSession) -> None:
    limit = max(1, settings.SESSION_CONCURRENT_LIMIT)
    live = list(
        live_sessions(user=user)
        .select_for_update()
        .filter(kind=UserSession.Kind.WEB)
        .exclude(id=keep.id)
        .order_by("-created_at")
    )
    for old in live[limit - 1 :]:
        session_end(user_session=old, reason="session_limit")


def session_end(*, user_session: UserSession, reason: str, actor: User | None = None) -> bool:
    """Ends one login (web session or mobile token family) at once. Idempotent."""
    with transaction.atomic():
        locked = UserSession.objects.select_for_update().get(pk=user_session.pk)
        if locked.ended_at is not None:
            return False
        locked.ended_at = timezone.now()
        locked.end_reason = reason[:32]
        locked.save(update_fields=["ended_at", "end_reason"])
        record(
            type=EventType.SESSION_ENDED,
            user=locked.user,
            actor=actor or locked.user,
            reason=reason,
            details={"sid": str(locked.id), "kind": locked.kind},
        )
        # Revoked at once rather than on commit: should the transaction roll back, the
        # session ends anyway, which fails safe.
        revocation.revoke(str(locked.id), reason=reason)
        session_ended.send(sender=UserSession, user_session=locked, reason=reason)
    user_session.ended_at = locked.ended_at
    user_session.end_reason = locked.end_reason
    return True


def sessions_end_all(*, user: User, reason: str, actor: User | None = None, except_sid: str | None = None) -> int:
    """Ends every live web session and mobile login of the user (but `except_sid`)."""
    ended = 0
    with transaction.atomic():
        live = UserSession.objects.filter(user=user, ended_at__isnull=True)
        if except_sid:
            live = live.exclude(id=except_sid)
        for user_session in live:
            ended += int(session_end(user_session=user_session, reason=reason, actor=actor))
    return ended


def session_end_for_user(*, user: User, session_id: str, reason: str = "ended_by_user") -> bool:
    """The user ends one of their own logins; someone else's is not found."""
    user_session = UserSession.objects.filter(user=user, id=session_id, ended_at__isnull=True).first()
    if user_session is None:
        raise UserSession.DoesNotExist
    return session_end(user_session=user_session, reason=reason, actor=user)


def session_logout(*, request: HttpRequest) -> None:
    user = request.user
    sid = request.session.get("sid")
    with transaction.atomic():
        if isinstance(user, User) and sid:
            user_session = UserSession.objects.filter(id=sid, user=user).first()
            if user_session is not None:
                record(type=EventType.LOGOUT, user=user, details={"sid": sid, "kind": "web"})
                session_end(user_session=user_session, reason="logout", actor=user)
        logout(request)


# --- Password change and reset -----------------------------------------------------------


def password_change(*, request: HttpRequest, user: User, new_password: str) -> None:
    """Changes the password, ends the user's other sessions and tokens, and tells them."""
    validate_password(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.password_changed_at = timezone.now()
        user.must_reset_password = False
        user.save(update_fields=["password", "password_changed_at", "must_reset_password"])
        record(type=EventType.PASSWORD_CHANGED, user=user)
        sessions_end_all(user=user, reason="password_changed", except_sid=request.session.get("sid"))
        _password_changed_hooks(user)
        email_enqueue(
            to=user.email,
            template="password_changed",
            context={"user": user, "when": timezone.now()},
            purpose="password_changed",
            user=user,
        )
    update_session_auth_hash(request, user)
    sid = request.session.get("sid")
    if sid:
        UserSession.objects.filter(id=sid).update(session_key_hash=session_key_hash(request.session.session_key or ""))


def _password_changed_hooks(user: User) -> None:
    """Other apps react to a new password (e.g. remembered devices lose their trust)."""
    password_changed.send(sender=User, user=user)


def password_reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(str(user.public_id)))
    token = default_token_generator.make_token(user)
    return settings.PUBLIC_BASE_URL + reverse("accounts:password_reset_confirm", kwargs={"uidb64": uid, "token": token})


def password_reset_request(*, email: str) -> None:
    """Sends a reset link when the address belongs to an active account; silent otherwise.

    Silent, but not quicker (issue 13): for an unknown or inactive address a stand-in user gets
    the same token and the same email, rendered and written to the outbox inside a savepoint that
    is rolled back, and the delivery task is queued as for a real message; it finds nothing to
    send. Both paths run the same statements (tests/accounts/test_enumeration_work.py).
    """
    email = normalize_email(email)
    with transaction.atomic():
        user = User.objects.filter(email=email, is_active=True).first()
        if user is None:
            record(type=EventType.PASSWORD_RESET_REQUESTED, outcome=Outcome.INFO, reason="unknown_email")
        else:
            record(type=EventType.PASSWORD_RESET_REQUESTED, user=user)
        recipient = user if user is not None else User(email=email)
        savepoint = transaction.savepoint()
        email_enqueue(
            to=recipient.email,
            template="password_reset",
            context={
                "user": recipient,
                "link": password_reset_link(recipient),
                "valid_minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
            },
            purpose="password_reset",
            user=user,
        )
        if user is not None:
            transaction.savepoint_commit(savepoint)
        else:
            # The row is undone; the delivery hook email_enqueue registered is kept (on-commit hooks
            # are dropped only when an atomic block rolls back, not a manual savepoint), so the
            # broker round trip happens as for a real message, and the task finds nothing to send.
            transaction.savepoint_rollback(savepoint)


def password_reset_complete(*, user: User, new_password: str) -> None:
    """Sets the new password; every session and token of the user ends; the lockout clears."""
    validate_password(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.password_changed_at = timezone.now()
        user.must_reset_password = False
        user.save(update_fields=["password", "password_changed_at", "must_reset_password"])
        record(type=EventType.PASSWORD_RESET_COMPLETED, user=user)
        sessions_end_all(user=user, reason="password_reset")
        _password_changed_hooks(user)
        email_enqueue(
            to=user.email,
            template="password_changed",
            context={"user": user, "when": timezone.now()},
            purpose="password_changed",
            user=user,
        )
    axes_reset(username=user.email)
    security.failures_cleared(email=user.email)
