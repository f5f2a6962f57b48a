"""The login's second step, the half-logged-in session, policy for staff, recovery codes, the admin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import User, UserSession
from mfa import services
from tests.mfa.conftest import events

T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)


def test_password_then_totp_logs_in_with_both_methods(
    client: Client, user: User, login: Callable[..., Any], add_totp: Callable[..., Any], time_machine: Any
) -> None:
    time_machine.move_to(T0, tick=False)
    _device, totp = add_totp(user)
    response = client.post(
        "/accounts/login/?next=/security/",
        {"email": user.email, "password": "correct horse battery staple", "next": "/security/"},
    )
    assert response["Location"] == "/accounts/login/mfa/"
    assert "_auth_user_id" not in client.session
    assert not UserSession.objects.filter(user=user).exists()
    page = client.get("/accounts/login/mfa/")
    assert b"authenticator app" in page.content
    response = client.post("/accounts/login/mfa/", {"method": "totp", "code": totp.now()})
    assert response.status_code == 302 and response["Location"] == "/security/"
    assert client.session["amr"] == ["pwd", "otp"]
    assert UserSession.objects.get(user=user).amr == ["pwd", "otp"]
    assert events("mfa.verified", user)[-1].details["purpose"] == "login"
    assert client.session["otp_device_id"] == _device.persistent_id
    assert client.get("/security/").status_code == 200


def test_wrong_code_at_login_shows_an_error(
    client: Client, user: User, login: Callable[..., Any], add_totp: Callable[..., Any], time_machine: Any
) -> None:
    time_machine.move_to(T0, tick=False)
    _device, totp = add_totp(user)
    login(client, user)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    response = client.post("/accounts/login/mfa/", {"method": "totp", "code": wrong})
    assert response.status_code == 400
    assert b'id="mfa-error"' in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/security/",
        "/accounts/password/change/",
        "/accounts/signup/",
        "/accounts/login/",
        "/admin/",
        "/security/mfa/totp/add/",
        "/accounts/reauth/",
    ],
)
def test_half_logged_in_session_reaches_only_the_second_step(
    client: Client, user: User, login: Callable[..., Any], add_totp: Callable[..., Any], path: str
) -> None:
    add_totp(user)
    login(client, user)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/mfa/"
    assert client.get("/accounts/login/mfa/").status_code == 200


def test_pending_login_expires(
    client: Client, user: User, login: Callable[..., Any], add_totp: Callable[..., Any], time_machine: Any
) -> None:
    time_machine.move_to(T0, tick=False)
    _device, totp = add_totp(user)
    login(client, user)
    time_machine.move_to(T0 + timedelta(minutes=11), tick=False)
    response = client.post("/accounts/login/mfa/", {"method": "totp", "code": totp.now()})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_preferred_method_first_with_links_to_others_and_recovery(
    client: Client,
    user: User,
    login: Callable[..., Any],
    add_totp: Callable[..., Any],
    add_email: Callable[..., Any],
    outbox: list[Any],
    run_outbox: Callable[[], int],
) -> None:
    add_totp(user)
    add_email(user)
    services.recovery_codes_generate(request=None, user=user)
    from mfa.models import MFAState

    MFAState.objects.update_or_create(user=user, defaults={"preferred_method": "email"})
    login(client, user)
    html = client.get("/accounts/login/mfa/").content.decode()
    assert "Send me a code" in html
    assert "?method=totp" in html and "?method=recovery" in html
    client.post("/accounts/login/mfa/send/", {"method": "email"})
    run_outbox()
    import re

    code = re.search(r"\b(\d{6})\b", outbox[-1].body).group(1)  # type: ignore[union-attr]
    response = client.post("/accounts/login/mfa/", {"method": "email", "code": code})
    assert response.status_code == 302
    assert client.session["amr"] == ["pwd", "email"]


def test_a_recovery_code_works_once_and_regenerating_voids_the_set(
    make_client: Callable[..., Client], user: User, login: Callable[..., Any], add_totp: Callable[..., Any]
) -> None:
    add_totp(user)
    codes = services.recovery_codes_generate(request=None, user=user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert events("mfa.recovery_codes_generated", user)[-1].details["count"] == 10
    first = make_client()
    login(first, user)
    response = first.post("/accounts/login/mfa/", {"method": "recovery", "code": codes[0].upper()})
    assert response.status_code == 302
    assert first.session["amr"] == ["pwd", "rec"]
    second = make_client()
    login(second, user)
    response = second.post("/accounts/login/mfa/", {"method": "recovery", "code": codes[0]})
    assert response.status_code == 400
    assert "_auth_user_id" not in second.session
    new_codes = services.recovery_codes_generate(request=None, user=user)
    with pytest.raises(services.InvalidCode):
        services.code_verify(user=user, method="recovery", code=codes[1], purpose="login")
    assert services.code_verify(user=user, method="recovery", code=new_codes[1], purpose="login") == "rec"


def test_recovery_codes_page_shows_codes_once(logged_in: Client, user: User, add_totp: Callable[..., Any]) -> None:
    add_totp(user)
    response = logged_in.post("/security/mfa/recovery-codes/")
    assert response.status_code == 200
    assert response.content.count(b"<li><code>") == 10
    assert logged_in.get("/security/mfa/recovery-codes/").content.count(b"<li><code>") == 0


def test_customer_without_factor_is_invited_not_forced(client: Client, user: User, login: Callable[..., Any]) -> None:
    response = login(client, user)
    assert response["Location"].startswith("/security/mfa/welcome/")
    assert client.session["amr"] == ["pwd"]
    assert client.get("/security/").status_code == 200  # not forced
    assert client.post("/security/mfa/welcome/", {"next": "/"})["Location"] == "/"
    client.post("/accounts/logout/")
    assert login(client, user)["Location"] == "/"


def _staff(user: User) -> User:
    user.is_staff = True
    user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


def test_staff_without_a_strong_factor_must_enrol_and_the_admin_refuses_them(
    client: Client, user: User, login: Callable[..., Any], add_email: Callable[..., Any], time_machine: Any
) -> None:
    time_machine.move_to(T0, tick=False)
    _staff(user)
    add_email(user)  # not acceptable for staff
    response = login(client, user)
    assert response["Location"] == "/security/mfa/required/"
    assert client.get("/").status_code == 302
    admin = client.get("/admin/")
    assert admin.status_code == 302 and admin["Location"] == "/security/mfa/required/"
    page = client.get("/security/mfa/totp/add/")
    assert page.status_code == 200
    from tests.mfa.conftest import totp_from_page

    totp = totp_from_page(page.content.decode())
    response = client.post("/security/mfa/totp/add/", {"code": totp.now(), "name": "Phone"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert "otp" in client.session["amr"]


def test_admin_refuses_staff_whose_login_used_no_strong_factor(
    make_client: Callable[..., Client],
    user: User,
    login: Callable[..., Any],
    add_totp: Callable[..., Any],
    time_machine: Any,
) -> None:
    time_machine.move_to(T0, tick=False)
    _staff(user)
    _device, totp = add_totp(user)
    codes = services.recovery_codes_generate(request=None, user=user)
    with_recovery = make_client()
    login(with_recovery, user)
    with_recovery.post("/accounts/login/mfa/", {"method": "recovery", "code": codes[0]})
    assert with_recovery.session["amr"] == ["pwd", "rec"]
    refused = with_recovery.get("/admin/", follow=True)
    assert refused.status_code == 403
    assert b"authenticator app or a passkey" in refused.content

    with_totp = make_client()
    login(with_totp, user)
    with_totp.post("/accounts/login/mfa/", {"method": "totp", "code": totp.now()})
    assert with_totp.get("/admin/").status_code == 200
    assert with_totp.get("/admin/login/")["Location"] == "/admin/"
    # Anonymous: the portal's own login, then back to the admin.
    response = make_client().get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert make_client().get("/admin/auth/group/").status_code == 302
    login_page = make_client().get(response["Location"])
    assert login_page["Location"].startswith("/accounts/login/?next=")


def test_security_group_must_use_strong_factors(user: User, add_sms: Callable[..., Any]) -> None:
    group, _ = Group.objects.get_or_create(name="security")
    user.groups.add(group)
    add_sms(user)
    assert services.methods_for(user=user) == []
    with pytest.raises(services.MethodUnavailable):
        services.code_send(user=user, method="sms", purpose="login")
