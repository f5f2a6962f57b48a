"""The login pipeline: every way in (web, mobile API, identity provider) is one attempt, run
through the same ordered stages, finished in one place.

    the password            accounts.services.password_check (rate limit, CAPTCHA, lockout, argon2id)
        |
    begin()                 one LoginAttempt: who, channel, client IP, device; computed once, carried
        |
    the stages of settings.LOGIN_STAGES, in order (each may add facts, refuse, or pause):
        risk.stages.RiskStage               place, device, risk decision (once); deny, or ask for a
                                            second step
        mfa.stages.SecondFactorStage        a second factor when one is enrolled or the risk asks;
                                            an emailed code to the verified address when none is
        mfa.stages.EnrolRequiredStage       staff and the security group without a strong factor:
                                            enrolment before anything else
        accounts.stages.BreachedPasswordStage  a password found in a breach: change it first
        |            a pause keeps the attempt in the pending-login store (the web session, or the
        |            API's mfa_token) until the step is passed; resume() runs the remaining stages
    finish()                the only place a login becomes a web session or a token family; then
                            every stage's after_login (remember the device, gates) in the same
                            transaction

`accounts` knows the stages only by the dotted paths in settings (as django-allauth's login
stages); `mfa` and `risk` import this module, never the reverse. A stage cannot be skipped by
a path: the second factor, the emailed risky-login code, a passkey and a recovery code all
resume the same attempt, and only finish() starts a session.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import User
from core.crypto import keyed_hash
from core.errors import DomainError
from core.net import client_ip

Channel = Literal["web", "api", "oidc"]
# Set on the user object of a login attempt, loaded with the stages' user_related rows in this request.
LOADED_FOR_LOGIN = "_loaded_for_login"
# {name: value} of the stages' user_join rows loaded with the user object (see Stage.user_join).
LOADED_JOINS = "_loaded_joins"


def loaded_related(user: Any, name: str) -> tuple[bool, Any]:
    """(True, row or None) when the login loaded the user's `name` relation with select_related."""
    if not getattr(user, LOADED_FOR_LOGIN, False):
        return False, None
    cache = getattr(getattr(user, "_state", None), "fields_cache", {})
    return (name in cache), cache.get(name)


def loaded_join(user: Any, name: str, value: str) -> tuple[bool, Any]:
    """(True, row or None) when the password step loaded the stage's user_join `name` for `value`."""
    joins = getattr(user, LOADED_JOINS, None)
    if not isinstance(joins, dict) or name not in joins or joins[name] != value:
        return False, None
    return True, getattr(user, name, None)


class LoginRefused(DomainError):
    """A stage refused the login (risk denied it, enrolment needed on a channel that cannot do it...)."""

    code = "login_denied"
    status = 403
    default_message = "This sign-in was refused."


class LoginExpired(DomainError):
    code = "login_expired"
    status = 401
    default_message = "Your sign-in has expired. Please sign in again."


class TooManyAttempts(DomainError):
    code = "mfa_locked"
    status = 429
    default_message = "Too many wrong codes. Please sign in again."


@dataclass
class LoginAttempt:
    """One sign-in, from the password to the session: everything stages need, computed once."""

    user: User
    channel: Channel
    ip: str
    next_url: str = ""
    # The app's device id (API); None on the web, where the device cookie says which browser it is.
    device_id: str | None = None
    device_label: str = ""
    remember_device: bool = False
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    # Why the login needs more than the password ("has_factor", "policy", "risk:new_device", ...).
    reasons: list[str] = field(default_factory=list)
    # A stage that lets a remembered device skip the second factor says so here.
    trusted_device: bool = False
    # Facts by stage key (the risk decision, the factor methods, ...), for later stages and after_login.
    facts: dict[str, Any] = field(default_factory=dict)
    # Restrictions the finished login carries ("enrol_required", "password_change_required").
    gates: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    # What the pause waits for (a stage key and its data), while paused.
    waiting: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    started_at: float = field(default_factory=lambda: timezone.now().timestamp())
    # The request of this step; never stored.
    request: HttpRequest | None = field(default=None, repr=False, compare=False)

    @property
    def binding(self) -> str:
        """What codes and passkey challenges of this attempt are bound to."""
        return keyed_hash(self.id, purpose="login-attempt")

    @property
    def expired(self) -> bool:
        return timezone.now().timestamp() - self.started_at > settings.LOGIN_ATTEMPT_TTL_SECONDS

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _STORED_FIELDS}
        data["uid"] = self.user.pk
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, user: User, request: HttpRequest) -> LoginAttempt:
        stored = {k: v for k, v in data.items() if k in _STORED_FIELDS}
        return cls(user=user, request=request, **stored)


_STORED_FIELDS = tuple(f.name for f in fields(LoginAttempt) if f.name not in ("user", "request"))


@dataclass(frozen=True)
class Pause:
    """A stage waits for the user: `stage` is who resumes, `methods` what the user may answer with."""

    stage: str
    methods: list[str]
    web_url: str
    data: dict[str, Any] = field(default_factory=dict)


class Stage:
    """One step of the login. Subclasses live in the apps that own the step (mfa, risk, ...)."""

    key: ClassVar[str] = ""
    # Relations of the user row this stage reads (select_related at the password step: no extra query).
    user_related: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def user_join(cls, *, channel: Channel, device_id: str | None) -> tuple[str, str, str, str] | None:
        """(name, relation, field, value): the user's row of `relation` whose `field` is `value`,
        loaded with the user row at the password step (a LEFT JOIN, no extra query) as attribute
        `name`; read it back with loaded_join. None: nothing to load."""
        return None

    def run(self, attempt: LoginAttempt) -> Pause | None:
        """Adds facts, raises LoginRefused, or returns a Pause. None: go on."""
        return None

    def login_writes(self, attempt: LoginAttempt) -> list[tuple[str, list[Any]]]:
        """UPDATEs (SQL, parameters; core.sql.update_sql) of rows that exist already, written with
        the API login's own rows and audit events in one statement, inside finish()'s transaction.
        They may not depend on each other's effects; what a stage hands here, its after_login must
        not write again."""
        return []

    def after_login(self, attempt: LoginAttempt, login: Login) -> str | None:
        """Inside finish()'s transaction, once the login exists. May return where the web goes next."""
        return None


@dataclass
class Login:
    """A finished login: the registry row, and the channel's credential (web: the session; API: tokens)."""

    attempt: LoginAttempt
    sid: str
    tokens: Any = None
    redirect: str = ""


@dataclass(frozen=True)
class Outcome:
    """What run()/resume() answer: a finished login, or a pause with its pending-login token."""

    login: Login | None = None
    pause: Pause | None = None
    attempt: LoginAttempt | None = None
    mfa_token: str = ""


@functools.cache
def _stage_classes(paths: tuple[str, ...]) -> tuple[type[Stage], ...]:
    return tuple(import_string(path) for path in paths)


def stages() -> list[Stage]:
    return [cls() for cls in _stage_classes(tuple(settings.LOGIN_STAGES))]


def user_related() -> tuple[str, ...]:
    """What the password step should load with the user row, for every configured stage."""
    related: list[str] = []
    for cls in _stage_classes(tuple(settings.LOGIN_STAGES)):
        related.extend(r for r in cls.user_related if r not in related)
    return tuple(related)


def user_joins(*, channel: Channel, device_id: str | None) -> tuple[tuple[str, str, str, str], ...]:
    """What the password step should join to the user row for this login (Stage.user_join)."""
    joins = []
    for cls in _stage_classes(tuple(settings.LOGIN_STAGES)):
        join = cls.user_join(channel=channel, device_id=device_id)
        if join is not None:
            joins.append(join)
    return tuple(joins)


# --- Running the stages -------------------------------------------------------------------------


def begin(
    request: HttpRequest,
    *,
    user: User,
    channel: Channel,
    next_url: str = "",
    device_id: str | None = None,
    device_label: str = "",
    password: str = "",
) -> LoginAttempt:
    """A new attempt for a user whose password was just proven. `password` is used by stages that
    look at it (breach check) during run() and is never stored."""
    attempt = LoginAttempt(
        user=user,
        channel=channel,
        ip=client_ip(request),
        next_url=next_url,
        device_id=device_id,
        device_label=device_label[:120],
        request=request,
    )
    attempt.audit["channel"] = channel
    if password:
        attempt.facts["_password"] = password
    return attempt


def run(attempt: LoginAttempt) -> Outcome:
    """Runs the stages not yet passed, in order; finishes the login when none pauses."""
    try:
        for current in stages():
            if current.key in attempt.done:
                continue
            pause = current.run(attempt)
            if pause is not None:
                attempt.waiting = {"stage": pause.stage, "methods": pause.methods, **pause.data}
                attempt.facts.pop("_password", None)
                token = store_for(attempt).save(attempt)
                return Outcome(pause=pause, attempt=attempt, mfa_token=token)
            attempt.done.append(current.key)
    finally:
        attempt.facts.pop("_password", None)
    return Outcome(login=finish(attempt), attempt=attempt)


def resume(attempt: LoginAttempt, *, stage_key: str, amr: str = "", details: dict[str, Any] | None = None) -> Outcome:
    """The user passed the step `stage_key` waited for: record it, then run the remaining stages."""
    if attempt.waiting.get("stage") != stage_key:
        raise LoginExpired()
    if not store_for(attempt).consume(attempt):
        raise LoginExpired()  # the pending login was used by a concurrent request
    if amr and amr not in attempt.amr:
        attempt.amr.append(amr)
    attempt.audit.update(details or {})
    attempt.done.append(stage_key)
    attempt.waiting = {}
    return run(attempt)


def finish(attempt: LoginAttempt) -> Login:
    """The one place a login is completed, for every channel and every path."""
    from accounts import services

    request = attempt.request
    assert request is not None
    details = {**attempt.audit, **({"mfa_reasons": attempt.reasons} if attempt.reasons else {})}
    # savepoint=False: inside a caller's transaction (the second step's) the login is part of it.
    with transaction.atomic(savepoint=False):
        if attempt.channel == "api":
            from accounts.api import services as api_services

            # The stages' UPDATEs travel with the login's rows: one statement for an everyday login.
            also = [statement for current in stages() for statement in current.login_writes(attempt)]
            pair = api_services.login_complete(
                request=request,
                user=attempt.user,
                amr=list(attempt.amr),
                device_id=attempt.device_id or "",
                device_label=attempt.device_label,
                extra=details,
                also=also,
            )
            login = Login(attempt=attempt, sid=pair.sid, tokens=pair)
        else:
            user_session = services.session_start(
                request=request, user=attempt.user, amr=list(attempt.amr), extra=details
            )
            login = Login(attempt=attempt, sid=str(user_session.id))
        redirect = ""
        for current in stages():
            target = current.after_login(attempt, login)
            if target and not redirect:
                redirect = target
    if attempt.channel == "api":
        login.redirect = redirect  # the app is answered tokens, not sent anywhere
    else:
        login.redirect = redirect or attempt.next_url or reverse(settings.LOGIN_REDIRECT_URL)
    return login


def web_redirect(outcome: Outcome) -> str:
    """Where the browser goes next: the paused step's page, or where the finished login leads."""
    if outcome.pause is not None:
        return outcome.pause.web_url
    assert outcome.login is not None
    return outcome.login.redirect


# --- The pending-login store: the web session, or the API's mfa_token ---------------------------------

SESSION_KEY = "login_pending"
_TOKEN_PREFIX = "login-pending:"  # noqa: S105 (a cache key prefix)
_FAILURES_PREFIX = "login-failures:"


class _Store:
    def save(self, attempt: LoginAttempt) -> str:
        raise NotImplementedError

    def consume(self, attempt: LoginAttempt) -> bool:
        raise NotImplementedError


class SessionStore(_Store):
    """The web: the attempt lives in the (not yet logged-in) session, under a new session key."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    def save(self, attempt: LoginAttempt) -> str:
        session = self.request.session
        if session.get(SESSION_KEY, {}).get("id") != attempt.id:
            session.cycle_key()
        session[SESSION_KEY] = attempt.to_dict()
        return ""

    def load(self) -> LoginAttempt | None:
        data = self.request.session.get(SESSION_KEY)
        if not isinstance(data, dict):
            return None
        return _loaded(data, request=self.request, on_stale=lambda: self.request.session.pop(SESSION_KEY, None))

    def consume(self, attempt: LoginAttempt) -> bool:
        data = self.request.session.pop(SESSION_KEY, None)
        return isinstance(data, dict) and data.get("id") == attempt.id


class TokenStore(_Store):
    """The API: the attempt lives in Redis under the hash of a single-use `mfa_token` (5 minutes)."""

    def __init__(self, raw: str = "") -> None:
        self.raw = raw

    @staticmethod
    def _key(raw: str) -> str:
        return _TOKEN_PREFIX + keyed_hash(raw, purpose="login-pending-token")

    def save(self, attempt: LoginAttempt) -> str:
        self.raw = self.raw or secrets.token_urlsafe(32)
        remaining = settings.API_MFA_TOKEN_TTL_SECONDS - (timezone.now().timestamp() - attempt.started_at)
        cache.set(self._key(self.raw), attempt.to_dict(), timeout=max(1, int(remaining)))
        return self.raw

    def load(self, *, request: HttpRequest, device_id: str | None = None) -> LoginAttempt | None:
        if not self.raw or len(self.raw) > 200:
            return None
        data = cache.get(self._key(self.raw))
        if not isinstance(data, dict):
            return None
        if timezone.now().timestamp() - float(data.get("started_at", 0)) > settings.API_MFA_TOKEN_TTL_SECONDS:
            cache.delete(self._key(self.raw))
            return None
        if device_id is not None and device_id != (data.get("device_id") or ""):
            return None  # bound to the device that passed the password
        return _loaded(data, request=request, on_stale=lambda: cache.delete(self._key(self.raw)))

    def consume(self, attempt: LoginAttempt) -> bool:
        # Single use: only the request that deletes the key may finish the login.
        return bool(cache.delete(self._key(self.raw)))


def _loaded(data: dict[str, Any], *, request: HttpRequest, on_stale: Any) -> LoginAttempt | None:
    uid = data.get("uid")
    user = (
        User.objects.select_related(*user_related()).filter(pk=uid, is_active=True).first()
        if isinstance(uid, int)
        else None
    )
    if user is None:
        on_stale()
        return None
    setattr(user, LOADED_FOR_LOGIN, True)
    attempt = LoginAttempt.from_dict(data, user=user, request=request)
    if attempt.expired:
        on_stale()
        return None
    return attempt


def store_for(attempt: LoginAttempt) -> _Store:
    assert attempt.request is not None
    if attempt.channel == "api":
        existing = getattr(attempt.request, "_login_token_store", None)
        if isinstance(existing, TokenStore):
            return existing
        store = TokenStore()
        attempt.request._login_token_store = store  # type: ignore[attr-defined]
        return store
    return SessionStore(attempt.request)


def pending_web(request: HttpRequest) -> LoginAttempt | None:
    """The web attempt waiting for its next step in this session, if any and still fresh."""
    return SessionStore(request).load()


def pending_api(request: HttpRequest, *, mfa_token: str, device_id: str | None = None) -> LoginAttempt | None:
    store = TokenStore(mfa_token)
    attempt = store.load(request=request, device_id=device_id)
    if attempt is not None:
        request._login_token_store = store  # type: ignore[attr-defined]
    return attempt


def pending_update(attempt: LoginAttempt) -> None:
    """Saves a change to a paused attempt without resuming it."""
    store_for(attempt).save(attempt)


def abandon(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def attempt_try(attempt: LoginAttempt) -> int:
    """Spends one of the paused attempt's tries before an answer is checked; returns the tries left.

    Counted with Redis INCR before the check, not after it: of ten concurrent wrong codes, exactly
    API_MFA_TOKEN_MAX_ATTEMPTS are checked at all, and the others are refused unread. Past the
    limit the attempt is gone (TooManyAttempts).
    """
    key = _FAILURES_PREFIX + attempt.binding
    cache.add(key, 0, timeout=settings.LOGIN_ATTEMPT_TTL_SECONDS + 60)
    tries = int(cache.incr(key))
    if tries > settings.API_MFA_TOKEN_MAX_ATTEMPTS:
        store_for(attempt).consume(attempt)
        raise TooManyAttempts()
    return settings.API_MFA_TOKEN_MAX_ATTEMPTS - tries
