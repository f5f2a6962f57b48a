"""Re-authentication: 5 minutes, password or a factor, the held submission replayed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client, RequestFactory

from accounts import authn as reauth
from accounts.models import User
from mfa import services
from mfa.models import EmailFactor, MFAState, TOTPFactor
from tests.mfa.conftest import events

T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)


@pytest.fixture
def totp_login(
    client: Client, user: User, login: Callable[..., Any], add_totp: Callable[..., Any], time_machine: Any
) -> Any:
    time_machine.move_to(T0, tick=False)
    _device, totp = add_totp(user)
    login(client, user)
    response = client.post("/accounts/login/mfa/", {"method": "totp", "code": totp.now()})
    assert response.status_code == 302
    return totp


def test_reauth_window_is_five_minutes(client: Client, totp_login: Any, time_machine: Any) -> None:
    time_machine.move_to(T0 + timedelta(minutes=4, seconds=59), tick=False)
    assert client.get("/security/mfa/totp/add/").status_code == 200
    time_machine.move_to(T0 + timedelta(minutes=5, seconds=1), tick=False)
    response = client.get("/security/mfa/totp/add/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/reauth/?next=%2Fsecurity%2Fmfa%2Ftotp%2Fadd%2F"


def test_held_submission_is_replayed_after_reauth(
    client: Client, user: User, totp_login: Any, add_email: Callable[..., Any], time_machine: Any
) -> None:
    add_email(user)
    time_machine.move_to(T0 + timedelta(minutes=10), tick=False)
    response = client.post("/security/mfa/preferred/", {"method": "email", "password": "not kept"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauth/?next=")
    hold = re.search(r"hold=([^&]+)", response["Location"]).group(1)  # type: ignore[union-attr]
    held = client.session[reauth.HELD_SESSION_KEY][hold]
    assert held["data"] == {"method": ["email"]}  # no password, no CSRF token
    assert services.preferred_method(user=user) == "totp"

    page = client.get(response["Location"])
    assert b"has been kept" in page.content
    wrong = client.post(
        "/accounts/reauth/", {"kind": "password", "password": "wrong", "hold": hold, "next": "/security/mfa/preferred/"}
    )
    assert wrong.status_code == 400
    assert events("auth.reauthenticated", user)[-1].outcome == "failure"
    done = client.post(
        "/accounts/reauth/",
        {
            "kind": "password",
            "password": "correct horse battery staple",
            "hold": hold,
            "next": "/security/mfa/preferred/",
        },
    )
    assert done.status_code == 200
    html = done.content.decode()
    assert 'action="/security/mfa/preferred/"' in html and f'value="{hold}"' in html
    assert "js/mfa-continue.js" in html and "<script>" not in html
    # What the auto-submitting page posts: only the hold id (and the CSRF token).
    final = client.post("/security/mfa/preferred/", {reauth.HOLD_FIELD: hold})
    assert final.status_code == 302 and final["Location"] == "/security/"
    assert MFAState.objects.get(user=user).preferred_method == "email"
    assert services.preferred_method(user=user) == "email"
    reauthenticated = events("auth.reauthenticated", user)[-1].details
    assert reauthenticated["method"] == "password" and reauthenticated["amr"] == ["pwd", "otp"]
    assert events("mfa.preferred_changed", user)[-1].details == {"method": "email", "previous": ""}
    # A hold works once.
    assert client.post("/security/mfa/preferred/", {reauth.HOLD_FIELD: hold}).status_code == 302
    assert reauth.HELD_SESSION_KEY not in client.session or hold not in client.session[reauth.HELD_SESSION_KEY]


def test_reauth_with_a_factor_and_removal_emails_the_user(
    client: Client,
    user: User,
    totp_login: Any,
    add_email: Callable[..., Any],
    time_machine: Any,
    run_outbox: Callable[[], int],
    outbox: list[Any],
) -> None:
    email_factor = add_email(user)
    time_machine.move_to(T0 + timedelta(minutes=6), tick=False)
    response = client.post(f"/security/mfa/email/{email_factor.pk}/remove/")
    hold = re.search(r"hold=([^&]+)", response["Location"]).group(1)  # type: ignore[union-attr]
    done = client.post("/accounts/reauth/", {"kind": "totp", "code": totp_login.now(), "hold": hold})
    assert done.status_code == 200
    assert events("auth.reauthenticated", user)[-1].details["method"] == "totp"
    client.post(f"/security/mfa/email/{email_factor.pk}/remove/", {reauth.HOLD_FIELD: hold})
    assert not EmailFactor.objects.filter(pk=email_factor.pk).exists()
    assert events("mfa.removed", user)[-1].details == {"method": "email", "device": email_factor.pk}
    run_outbox()
    assert any("was removed" in m.body for m in outbox)


def test_services_refuse_without_recent_auth(user: User, add_totp: Callable[..., Any], time_machine: Any) -> None:
    time_machine.move_to(T0, tick=False)
    device, _totp = add_totp(user)
    request = RequestFactory().post("/")
    request.user = user
    request.session = {"auth_time": (T0 - timedelta(minutes=6)).timestamp()}  # type: ignore[assignment]
    with pytest.raises(reauth.ReauthRequired):
        services.factor_remove(request=request, user=user, method="totp", device_id=device.pk)
    with pytest.raises(reauth.ReauthRequired):
        services.totp_enrol_begin(request=request, user=user)
    with pytest.raises(reauth.ReauthRequired):
        services.recovery_codes_generate(request=request, user=user)
    assert TOTPFactor.objects.filter(pk=device.pk).exists()
    request.session["auth_time"] = (T0 - timedelta(minutes=4)).timestamp()  # type: ignore[index]
    services.factor_remove(request=request, user=user, method="totp", device_id=device.pk)
    assert not TOTPFactor.objects.filter(pk=device.pk).exists()


def test_repeated_wrong_passwords_on_reauth_end_the_session(
    client: Client, user: User, totp_login: Any, time_machine: Any
) -> None:
    time_machine.move_to(T0 + timedelta(minutes=10), tick=False)
    for _ in range(4):
        assert client.post("/accounts/reauth/", {"kind": "password", "password": "nope"}).status_code == 400
    response = client.post("/accounts/reauth/", {"kind": "password", "password": "nope"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/security/").status_code == 302


def test_reauth_with_a_passkey_resumes_the_held_submission(
    client: Client,
    user: User,
    totp_login: Any,
    add_email: Callable[..., Any],
    authenticator: Any,
    time_machine: Any,
) -> None:
    import json

    from tests.mfa.test_webauthn import register_passkey

    assert register_passkey(client, authenticator).status_code == 200
    add_email(user)
    time_machine.move_to(T0 + timedelta(minutes=7), tick=False)
    response = client.post("/security/mfa/preferred/", {"method": "email"})
    location = response["Location"]
    hold = re.search(r"hold=([^&]+)", location).group(1)  # type: ignore[union-attr]
    page = client.get(location + "&method=webauthn")
    assert b'data-webauthn="assert"' in page.content and hold.encode() in page.content
    options = client.post("/accounts/reauth/passkey/options/", content_type="application/json", data="{}").json()
    result = client.post(
        "/accounts/reauth/passkey/verify/",
        content_type="application/json",
        data=json.dumps({"credential": authenticator.get(options), "hold": hold, "next": "/security/mfa/preferred/"}),
    )
    assert result.status_code == 200
    resume = client.get(result.json()["redirect"])
    assert resume.status_code == 200 and f'value="{hold}"' in resume.content.decode()
    client.post("/security/mfa/preferred/", {reauth.HOLD_FIELD: hold})
    assert services.preferred_method(user=user) == "email"
    reauthenticated = events("auth.reauthenticated", user)[-1].details
    assert reauthenticated["method"] == "webauthn" and "hwk" in reauthenticated["amr"]
