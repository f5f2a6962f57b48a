"""Staff actions in the admin (accounts.staff, mfa.staff): the standard re-authentication, a written reason,
an audit row with the staff actor."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.authn import reauth_url
from accounts.models import User, UserSession
from audit.events import EventType
from audit.models import AuditEvent
from tests.accounts.factories import DEFAULT_PASSWORD

CHANGELIST = "/admin/accounts/user/"
REASON = "Customer called from the registered number, ticket 4711"


@pytest.fixture
def staff(make_role_user: Callable[..., User]) -> User:
    return make_role_user("admin")


@pytest.fixture
def staff_client(staff: User, role_client: Callable[[User], Client]) -> Client:
    return role_client(staff)


@pytest.fixture
def customer(make_role_user: Callable[..., User]) -> User:
    user = make_role_user("customer", phone="+447700900123")
    UserSession.objects.create(user=user, kind=UserSession.Kind.WEB)
    UserSession.objects.create(user=user, kind=UserSession.Kind.MOBILE)
    return user


def _start(client: Client, action: str, user: User) -> Any:
    """The changelist's action: on to the action's own page."""
    return client.post(CHANGELIST, {"action": f"staff_{action}", "_selected_action": [str(user.pk)]})


def _run(client: Client, action: str, user: User, *, reason: str = REASON) -> Any:
    started = _start(client, action, user)
    if started.status_code != 302 or "/staff-action/" not in started["Location"]:
        return started
    return client.post(started["Location"], {"reason": reason})


def _event(type_: str, user: User) -> AuditEvent:
    return AuditEvent.objects.get(type=type_, user=user)


def test_action_shows_its_own_page_first(staff_client: Client, customer: User) -> None:
    started = _start(staff_client, "disable", customer)
    assert started.status_code == 302
    assert started["Location"] == f"{CHANGELIST}staff-action/disable/?ids={customer.pk}"
    page = staff_client.get(started["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="reason"' in body and 'name="password"' not in body and customer.email in body
    customer.refresh_from_db()
    assert customer.is_active
    assert not AuditEvent.objects.filter(type=EventType.ADMIN_ACCOUNT_DISABLED).exists()


def test_staff_re_authenticate_on_the_standard_page_and_come_back(
    staff_client: Client, staff: User, customer: User, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.REAUTH_MAX_AGE_SECONDS + 1), tick=False)
    page = _start(staff_client, "disable", customer)["Location"]
    response = staff_client.get(page)
    assert response.status_code == 302
    assert response["Location"] == reauth_url(next_url=page)

    key_before = staff_client.session.session_key
    wrong = staff_client.post(response["Location"], {"password": "not my password at all"})
    assert wrong.status_code != 302 or wrong["Location"] != page
    assert staff_client.get(page).status_code == 302  # still not re-authenticated
    customer.refresh_from_db()
    assert customer.is_active

    back = staff_client.post(response["Location"], {"password": DEFAULT_PASSWORD})
    assert back.status_code == 302 and back["Location"] == page
    assert staff_client.session.session_key != key_before  # a new session key at re-authentication
    assert 'name="reason"' in staff_client.get(page).content.decode()
    assert staff_client.post(page, {"reason": REASON}).status_code == 302
    customer.refresh_from_db()
    assert not customer.is_active
    event = _event(EventType.ADMIN_ACCOUNT_DISABLED, customer)
    assert (event.actor, event.reason) == (staff, REASON)
    assert AuditEvent.objects.filter(type=EventType.REAUTHENTICATED, user=staff).exists()


def test_a_reason_sent_after_the_window_closed_is_held_through_re_authentication(
    staff_client: Client, staff: User, customer: User, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    page = _start(staff_client, "end_sessions", customer)["Location"]
    assert staff_client.get(page).status_code == 200
    time_machine.shift(timedelta(seconds=settings.REAUTH_MAX_AGE_SECONDS + 1))
    held = staff_client.post(page, {"ids": str(customer.pk), "reason": REASON})
    assert held.status_code == 302 and held["Location"].startswith(reauth_url(next_url=page.split("?")[0]))
    assert UserSession.objects.filter(user=customer, ended_at__isnull=True).count() == 2  # nothing done yet

    confirmed = staff_client.post(held["Location"], {"password": DEFAULT_PASSWORD})
    found = re.search(r'name="(_reauth_hold)" value="([^"]+)"', confirmed.content.decode())
    assert confirmed.status_code == 200 and found
    done = staff_client.post(page.split("?")[0], {found.group(1): found.group(2)})
    assert done.status_code == 302
    assert not UserSession.objects.filter(user=customer, ended_at__isnull=True).exists()
    assert _event(EventType.ADMIN_SESSIONS_ENDED, customer).reason == REASON


@pytest.mark.parametrize("ids", ["", "abc", "1,,2", "1;2", "9" * 30])
def test_a_bad_selection_goes_back_to_the_list(staff_client: Client, customer: User, ids: str) -> None:
    response = staff_client.get(f"{CHANGELIST}staff-action/disable/", {"ids": ids})
    assert response.status_code == 302 and response["Location"] == CHANGELIST


def test_an_unknown_action_is_not_found(staff_client: Client, customer: User) -> None:
    assert staff_client.get(f"{CHANGELIST}staff-action/nope/", {"ids": str(customer.pk)}).status_code == 404


def test_reason_is_required(staff_client: Client, customer: User) -> None:
    response = _run(staff_client, "disable", customer, reason="  ")
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.is_active
    assert not AuditEvent.objects.filter(type=EventType.ADMIN_ACCOUNT_DISABLED).exists()


def test_unlock(
    staff_client: Client,
    staff: User,
    customer: User,
    make_client: Callable[..., Client],
    solve_captcha: Callable[[Client], str],
) -> None:
    victim = make_client(ip="203.0.113.9")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        victim.post(
            "/accounts/login/", {"email": customer.email, "password": "wrong password", "altcha": solve_captcha(victim)}
        )
    right = {"email": customer.email, "password": DEFAULT_PASSWORD}
    assert victim.post("/accounts/login/", {**right, "altcha": solve_captcha(victim)}).status_code == 429
    response = _run(staff_client, "unlock", customer)
    assert response.status_code == 302
    event = _event(EventType.ADMIN_ACCOUNT_UNLOCKED, customer)
    assert (event.actor, event.reason) == (staff, REASON)
    assert event.details["lockouts_cleared"] >= 1
    assert victim.post("/accounts/login/", {**right, "altcha": solve_captcha(victim)}).status_code == 302


def test_end_all_sessions(staff_client: Client, staff: User, customer: User) -> None:
    assert _run(staff_client, "end_sessions", customer).status_code == 302
    assert not UserSession.objects.filter(user=customer, ended_at__isnull=True).exists()
    assert set(UserSession.objects.filter(user=customer).values_list("end_reason", flat=True)) == {"ended_by_staff"}
    event = _event(EventType.ADMIN_SESSIONS_ENDED, customer)
    assert (event.actor, event.reason, event.details["ended"]) == (staff, REASON, 2)


def test_reset_mfa(staff_client: Client, staff: User, customer: User) -> None:
    from mfa.models import TOTPFactor

    factor = TOTPFactor(user=customer, name="Phone", confirmed=True)
    factor.set_key("11" * 20)
    factor.save()
    assert _run(staff_client, "reset_mfa", customer).status_code == 302
    assert not TOTPFactor.objects.filter(user=customer).exists()
    event = _event(EventType.ADMIN_MFA_RESET, customer)
    assert (event.actor, event.reason) == (staff, REASON)


def test_disable_ends_sessions_and_enable(staff_client: Client, staff: User, customer: User) -> None:
    assert _run(staff_client, "disable", customer).status_code == 302
    customer.refresh_from_db()
    assert not customer.is_active
    assert not UserSession.objects.filter(user=customer, ended_at__isnull=True).exists()
    event = _event(EventType.ADMIN_ACCOUNT_DISABLED, customer)
    assert (event.actor, event.reason, event.details["ended"]) == (staff, REASON, 2)

    assert _run(staff_client, "enable", customer, reason="Identity confirmed in branch").status_code == 302
    customer.refresh_from_db()
    assert customer.is_active
    event = _event(EventType.ADMIN_ACCOUNT_ENABLED, customer)
    assert (event.actor, event.reason) == (staff, "Identity confirmed in branch")


def test_force_password_reset(
    staff_client: Client, staff: User, customer: User, run_outbox: Callable[[], int], outbox: list[Any]
) -> None:
    assert _run(staff_client, "force_password_reset", customer).status_code == 302
    customer.refresh_from_db()
    assert customer.must_reset_password
    assert not UserSession.objects.filter(user=customer, ended_at__isnull=True).exists()
    event = _event(EventType.ADMIN_PASSWORD_RESET_FORCED, customer)
    assert (event.actor, event.reason) == (staff, REASON)
    run_outbox()
    assert [m.to for m in outbox] == [[customer.email]]
    assert "/accounts/password/reset/" in outbox[0].body


def test_staff_cannot_disable_themselves(staff_client: Client, staff: User) -> None:
    _run(staff_client, "disable", staff)
    staff.refresh_from_db()
    assert staff.is_active


def test_support_and_security_have_no_staff_actions(
    make_role_user: Callable[..., User], role_client: Callable[[User], Client], customer: User
) -> None:
    for role in ("support", "security"):
        client = role_client(make_role_user(role))
        page = client.get(CHANGELIST)
        assert page.status_code == 200
        assert "staff_disable" not in page.content.decode()
        _run(client, "disable", customer)
        assert client.get(f"{CHANGELIST}staff-action/disable/", {"ids": str(customer.pk)}).status_code == 403
        assert (
            client.post(f"{CHANGELIST}staff-action/disable/?ids={customer.pk}", {"reason": REASON}).status_code == 403
        )
        customer.refresh_from_db()
        assert customer.is_active
    assert not AuditEvent.objects.filter(type=EventType.ADMIN_ACCOUNT_DISABLED).exists()


def test_support_sees_customers_masked(
    make_role_user: Callable[..., User], role_client: Callable[[User], Client], customer: User
) -> None:
    client = role_client(make_role_user("support"))
    listing = client.get(CHANGELIST).content.decode()
    assert customer.masked_email in listing
    assert customer.email not in listing
    detail = client.get(f"{CHANGELIST}{customer.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert customer.email not in body and customer.phone not in body and customer.full_name not in body
    UserSession.objects.create(user=customer, kind=UserSession.Kind.WEB, ip="198.51.100.77")
    sessions = client.get("/admin/accounts/usersession/").content.decode()
    assert customer.email not in sessions
    assert "198.51.100.77" not in sessions and "198.51.100.x" in sessions
    # Security sees the data (needed to investigate).
    security = role_client(make_role_user("security"))
    assert customer.email in security.get(CHANGELIST).content.decode()


def test_service_refuses_without_permission(make_role_user: Callable[..., User], customer: User) -> None:
    from accounts.staff import StaffActionError, account_disable

    with pytest.raises(StaffActionError):
        account_disable(user=customer, actor=make_role_user("support"), reason=REASON)


def test_ending_sessions_also_ends_mobile_token_families(staff_client: Client, customer: User) -> None:
    from rest_framework.test import APIClient

    from tests.api.helpers import bearer, issue_tokens

    tokens = issue_tokens(customer)
    api = APIClient()
    api.credentials(**bearer(tokens))
    assert api.get("/api/v1/me").status_code == 200
    assert _run(staff_client, "end_sessions", customer).status_code == 302
    assert api.get("/api/v1/me").status_code == 401
    refreshed = api.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 401


def test_role_and_detail_changes_in_the_admin_are_audited(staff_client: Client, staff: User, customer: User) -> None:
    from django.contrib.auth.models import Group

    security = Group.objects.get(name="security")
    customer_group = Group.objects.get(name="customer")
    page = staff_client.get(f"{CHANGELIST}{customer.pk}/change/")
    assert page.status_code == 200
    data = {
        "email": customer.email,
        "full_name": "New Name",
        "phone": customer.phone,
        "phone_verified": "",
        "email_verified": "on",
        "is_staff": "on",
        "groups": [str(customer_group.pk), str(security.pk)],
    }
    response = staff_client.post(f"{CHANGELIST}{customer.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(type=EventType.ADMIN_USER_CHANGED, user=customer)
    assert event.actor == staff
    assert event.details["groups_added"] == ["security"]
    assert {"full_name", "is_staff"} <= set(event.details["fields"])


def test_staff_cannot_set_a_customers_password(staff_client: Client, customer: User) -> None:
    assert staff_client.get(f"{CHANGELIST}{customer.pk}/password/").status_code == 403
