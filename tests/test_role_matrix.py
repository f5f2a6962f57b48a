"""Every URL pattern, with every role: the server enforces the roles.

The URL list is read from the resolver at run time, so pages other areas add are covered
without editing this file. URL kwargs are filled with *another customer's* objects where we
know the kwarg (session, bank account, payment, device, MFA factor), else with values that
match nothing. Expectations come from EXPECT (by URL name) or from the default rules:

- anonymous: never 200 on a non-public page: a redirect to the login page (web), 401 (API),
  or 405 for a POST-only view; a POST gets the same (or 403);
- authenticated roles: never a 5xx; another customer's object is never shown or changed:
  403/404 (405 for the wrong method, or a redirect to log in / confirm identity), for GET
  and for POST (web) / DELETE (API), and the objects are unchanged afterwards;
- the admin: anonymous and customers are sent to its login; staff roles get 200/302/403/404/405.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts.models import User, UserSession
from tests.accounts.factories import UserFactory
from tests.audit.helpers import web_login

ROLES = ("anonymous", "customer", "support", "security", "admin")
STAFF = ("support", "security", "admin")
LOGIN = "login"  # 302 to /accounts/login/
ADMIN_LOGIN = "admin_login"  # 302 to /admin/login/

# Pages anyone may open (their GET answers anything but a 5xx).
PUBLIC = {
    "core:healthz",
    "accounts:login",
    "accounts:captcha",
    "accounts:logout",
    "accounts:signup",
    "accounts:signup_done",
    "accounts:verify_email",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "risk:not_me",
    "api-schema",
    "api-docs",
    "jwks",
    # The identity provider's protocol endpoints: each authenticates its caller (client, token or
    # the portal login it redirects to) and answers a bare request with the protocol's own error.
    "oidc-discovery",
    "oauth2_provider:authorize",
    "oauth2_provider:par",
    "oauth2_provider:token",
    "oauth2_provider:revoke-token",
    "oauth2_provider:introspect",
    "oauth2_provider:user-info",
}
PUBLIC_PREFIXES = (
    "mfa:login_",
    "accounts_api:login",
    "mfa_api:mfa_",
    "accounts_api:token_",
    "accounts_api:logout",
)

_REPORTS = {"anonymous": LOGIN, "customer": 403, "support": 403, "security": 200, "admin": 200}
_OWN_PAGE = {"anonymous": LOGIN, "customer": 200, "support": 200, "security": 200, "admin": 200}
_ADMIN_ALL_STAFF = {"anonymous": ADMIN_LOGIN, "customer": ADMIN_LOGIN, "support": 200, "security": 200, "admin": 200}
_ADMIN_SECURITY = {"anonymous": ADMIN_LOGIN, "customer": ADMIN_LOGIN, "support": 403, "security": 200, "admin": 200}
_ADMIN_ADMIN_ONLY = {"anonymous": ADMIN_LOGIN, "customer": ADMIN_LOGIN, "support": 403, "security": 403, "admin": 200}
_ADMIN_NOBODY = {"anonymous": ADMIN_LOGIN, "customer": ADMIN_LOGIN, "support": 403, "security": 403, "admin": 403}

EXPECT: dict[str, dict[str, Any]] = {
    "audit:reports": _REPORTS,
    "audit:suspicious": _REPORTS,
    "audit:events_csv": _REPORTS,
    "api-audit-events": {"anonymous": 401, "customer": 403, "support": 403, "security": 200, "admin": 200},
    "accounts_api:me": {"anonymous": 401, "customer": 200, "support": 200, "security": 200, "admin": 200},
    "payments:dashboard": _OWN_PAGE,
    "accounts:security": _OWN_PAGE,
    "admin:index": _ADMIN_ALL_STAFF,
    # The admin's login is the portal's (password, then a strong second factor); logged-in non-staff are refused.
    "admin:login": {"anonymous": LOGIN, "customer": 403},
    "admin:logout": {"anonymous": {302, 405}, "customer": {302, 405}},
    "admin:accounts_user_changelist": _ADMIN_ALL_STAFF,
    "admin:accounts_user_change": _ADMIN_ALL_STAFF,  # support: read-only, masked
    "admin:accounts_user_add": _ADMIN_ADMIN_ONLY,
    "admin:accounts_user_delete": _ADMIN_NOBODY,  # accounts are disabled, never deleted
    "admin:accounts_usersession_changelist": _ADMIN_ALL_STAFF,
    "admin:audit_auditevent_changelist": _ADMIN_SECURITY,
    "admin:audit_auditevent_change": _ADMIN_SECURITY,
    "admin:audit_auditevent_add": _ADMIN_NOBODY,
    "admin:audit_auditevent_delete": _ADMIN_NOBODY,
    "admin:payments_payment_changelist": _ADMIN_SECURITY,
    "admin:risk_knowndevice_changelist": _ADMIN_ALL_STAFF,
}

# Views answering a write to someone else's object with a redirect to one's own page and an error
# message, exactly as for an id that does not exist (no leak; the snapshot below proves nothing
# changed). API.md asks for 404: reported to the owning area.
FOREIGN_WRITE_REDIRECTS: set[str] = set()


@dataclass
class Route:
    name: str
    kwargs: dict[str, Any]
    converters: dict[str, str]

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def path(self) -> str:
        return reverse(self.name, kwargs=self.kwargs)


def _walk(patterns: list[Any], namespace: str | None = None, converters: dict[str, str] | None = None) -> Iterator[Any]:
    for pattern in patterns:
        found = {**(converters or {}), **_converters(pattern)}
        if isinstance(pattern, URLResolver):
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern.url_patterns, ns, found)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern, found


def _converters(pattern: Any) -> dict[str, str]:
    route = pattern.pattern
    result = {name: type(conv).__name__ for name, conv in getattr(route, "converters", {}).items()}
    regex = getattr(route, "regex", None)
    for group in regex.groupindex if regex is not None else []:
        result.setdefault(group, "regex")
    return result


def _admin_model(name: str) -> Any:
    """admin:<app>_<model>_<view> -> the model, when the name follows the admin's scheme."""
    body = name.split(":", 1)[1]
    for model in apps.get_models():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if body.startswith(prefix):
            return model
    return None


@dataclass
class World:
    victim: User
    objects: dict[tuple[str, str], str]  # (kwarg, converter) -> another customer's object id
    admin_objects: dict[str, str]  # model label -> pk of a row (the victim's where it has one)
    snapshot: Callable[[], Any]


def _build_world() -> World:
    victim: User = UserFactory(email="victim@example.com", phone="+447700900999")  # type: ignore[assignment]
    objects: dict[tuple[str, str], str] = {}
    session = UserSession.objects.create(user=victim, kind=UserSession.Kind.WEB)
    objects[("session_id", "UUIDConverter")] = str(session.id)
    objects[("session_id", "StringConverter")] = str(session.id)
    snapshots: list[Callable[[], Any]] = [
        lambda: UserSession.objects.filter(pk=session.pk, ended_at__isnull=True).exists()
    ]
    try:
        from payments.models import Payment
        from payments.services import account_open

        account = account_open(owner=victim, currency="EUR", name="Victim", opening_balance=Decimal("500.00"))
        objects[("account_id", "UUIDConverter")] = str(account.id)
        objects[("account_id", "StringConverter")] = str(account.id)
        payment = Payment.objects.create(
            owner=victim,
            from_account=account,
            payee_name="Someone",
            payee_iban="NL91ABNA0417164300",
            amount=Decimal("20000.00"),
            currency="EUR",
            status=Payment.Status.PENDING_STEP_UP,
        )
        objects[("payment_id", "UUIDConverter")] = str(payment.id)
        objects[("payment_id", "StringConverter")] = str(payment.id)
        snapshots.append(lambda: Payment.objects.get(pk=payment.pk).status)
        snapshots.append(lambda: str(type(account).objects.get(pk=account.pk).balance))
    except Exception as exc:  # another area's model changed: those kwargs fall back to unknown ids
        print(f"role matrix: no payment objects ({exc!r})")
    try:
        from risk.models import KnownDevice

        device = KnownDevice.objects.create(user=victim, device_id_hash="f" * 64, name="Victim's phone")
        objects[("device_id", "UUIDConverter")] = str(device.id)
        snapshots.append(lambda: KnownDevice.objects.filter(pk=device.pk).values_list("name", flat=True).first())
    except Exception as exc:
        print(f"role matrix: no device objects ({exc!r})")
    try:
        from mfa.models import TOTPFactor

        factor = TOTPFactor(user=victim, name="Victim's app", confirmed=True)
        factor.set_key("22" * 20)
        factor.save()
        objects[("device_id", "IntConverter")] = str(factor.id)
        objects[("method", "StringConverter")] = "totp"
        snapshots.append(lambda: TOTPFactor.objects.filter(pk=factor.pk).values_list("name", flat=True).first())
    except Exception as exc:
        print(f"role matrix: no MFA factor objects ({exc!r})")
    from audit.events import EventType
    from audit.services import record

    record(type=EventType.LOGIN_SUCCEEDED, user=victim)
    admin_objects: dict[str, str] = {}
    for model in apps.get_models():
        owner_field = next((f for f in ("user", "owner") if any(x.name == f for x in model._meta.fields)), None)
        qs = model._default_manager.all()
        if model is User:
            qs = qs.filter(pk=victim.pk)
        elif owner_field:
            qs = qs.filter(**{owner_field: victim}) or model._default_manager.all()
        row = qs.order_by("pk").values_list("pk", flat=True).first()
        if row is not None:
            admin_objects[model._meta.label_lower] = str(row)
    return World(victim, objects, admin_objects, lambda: [snap() for snap in snapshots])


def _routes(world: World) -> list[tuple[Route, bool]]:
    """(route, uses another customer's object)."""
    routes: list[tuple[Route, bool]] = []
    for name, _pattern, converters in _walk(get_resolver().url_patterns):
        kwargs: dict[str, Any] = {}
        foreign = False
        for kwarg, conv in converters.items():
            if name.startswith("admin:") and kwarg == "object_id":
                model = _admin_model(name)
                value = world.admin_objects.get(model._meta.label_lower) if model is not None else None
                kwargs[kwarg] = value or "999999"
                continue
            if (kwarg, conv) in world.objects:
                kwargs[kwarg] = world.objects[(kwarg, conv)]
                foreign = foreign or kwarg != "method"
                continue
            kwargs[kwarg] = {"UUIDConverter": str(uuid.uuid4()), "IntConverter": 999999}.get(conv, "x")
        if name.startswith("admin:") and name.endswith(("_changelist", "_add")) is False and "app_label" in kwargs:
            kwargs["app_label"] = "accounts"
        if "app_label" in kwargs:
            kwargs["app_label"] = "accounts"
        try:
            reverse(name, kwargs=kwargs)
        except Exception:  # noqa: S112 (a pattern we cannot build from its converters alone, e.g. a catch-all)
            continue
        routes.append((Route(name, kwargs, converters), foreign))
    return routes


def _is_public(name: str) -> bool:
    return name in PUBLIC or name.startswith(PUBLIC_PREFIXES)


def _matches(expected: Any, response: Any) -> bool:
    status = response.status_code
    location = response.get("Location", "")
    if expected == LOGIN:
        return status == 302 and location.startswith("/accounts/login/")
    if expected == ADMIN_LOGIN:
        return status == 302 and location.startswith("/admin/login/")
    if isinstance(expected, set | tuple | frozenset):
        return status in expected
    return bool(status == expected)


def _default_ok(role: str, route: Route, response: Any) -> bool:
    status = response.status_code
    location = response.get("Location", "")
    if status >= 500:
        return False
    if route.name.startswith("admin:"):
        if role in ("anonymous", "customer"):
            return status == 302 and location.startswith("/admin/login/")
        return status in (200, 302, 403, 404, 405)
    if role == "anonymous" and not _is_public(route.name):
        if route.is_api:
            return status in (401, 405)
        return (status == 302 and location.startswith("/accounts/login/")) or status == 405
    return True


def _foreign_ok(response: Any) -> bool:
    status = response.status_code
    location = response.get("Location", "")
    if status in (403, 404, 405, 401):
        return True
    return status == 302 and location.startswith(("/accounts/login/", "/accounts/reauth/"))


def _role_user(role: str) -> User | None:
    if role == "anonymous":
        return None
    user: User = UserFactory(role=role, is_staff=role in STAFF, email=f"{role}@bank.test")  # type: ignore[assignment]
    if role in STAFF:
        from mfa.models import TOTPFactor

        factor = TOTPFactor(user=user, name="Authenticator", confirmed=True)
        factor.set_key("00" * 20)
        factor.save()
    return user


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role: str, make_client: Callable[..., Client]) -> None:
    world = _build_world()
    before = world.snapshot()
    user = _role_user(role)
    api = APIClient(REMOTE_ADDR="203.0.113.10")
    if user is not None:
        from tests.api.helpers import bearer, issue_tokens

        api.credentials(**bearer(issue_tokens(user)))

    def web() -> Client:
        client = make_client(enforce_csrf_checks=False)
        if user is not None:
            web_login(client, user, amr=["pwd", "otp"] if user.is_staff else ["pwd"])
        return client

    failures: list[str] = []
    routes = _routes(world)
    assert len(routes) > 50, "the resolver walk found too few URLs"
    for route, foreign in routes:
        client: Any = api if route.is_api else web()
        path = route.path
        response = client.get(path)
        expected = EXPECT.get(route.name, {}).get(role)
        if expected is not None:
            ok = _matches(expected, response)
        elif foreign and user is not None:
            ok = _foreign_ok(response)
        else:
            ok = _default_ok(role, route, response)
        if not ok:
            failures.append(
                f"GET {path} ({route.name}) as {role}: {response.status_code} {response.get('Location', '')}"
            )
        if user is None and not _is_public(route.name) and not route.name.startswith("admin:"):
            posted = client.post(path, {"name": "x"})
            allowed = (401, 405) if route.is_api else (403, 405)
            login_redirect = posted.status_code == 302 and posted.get("Location", "").startswith("/accounts/login/")
            if not (posted.status_code in allowed or (login_redirect and not route.is_api)):
                failures.append(f"POST {path} ({route.name}) as anonymous: {posted.status_code}")
        if foreign and user is not None:
            write = client.delete(path) if route.is_api else client.post(path, {"name": "pwned", "reason": "x"})
            redirected_home = route.name in FOREIGN_WRITE_REDIRECTS and write.status_code == 302
            if not (_foreign_ok(write) or redirected_home):
                failures.append(
                    f"{'DELETE' if route.is_api else 'POST'} {path} ({route.name}) as {role}: "
                    f"{write.status_code} {write.get('Location', '')}"
                )
    assert world.snapshot() == before, "another customer's objects were changed"
    assert not failures, f"{len(failures)} unexpected answers:\n" + "\n".join(failures)
