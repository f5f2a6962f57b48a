from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from mfa import services
from mfa.models import TOTPFactor
from tests.mfa.conftest import events, totp_from_page

# 10 s into a 30 s step, so ±1 step is unambiguous.
T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)


def test_enrolment_shows_qr_and_secret_and_activates_only_after_a_correct_code(
    client: Client,
    user: User,
    login: Callable[..., Any],
    outbox: list[Any],
    run_outbox: Callable[[], int],
    time_machine: Any,
) -> None:
    time_machine.move_to(T0, tick=False)
    login(client, user)
    logged_in = client
    page = logged_in.get("/security/mfa/totp/add/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/svg+xml' in html
    assert "<script>" not in html
    totp = totp_from_page(html)
    device = TOTPFactor.objects.get(user=user)
    assert not device.confirmed
    assert totp.secret in html.replace(" ", "")
    assert f"issuer={'Bank%20Portal'}" in device.config_url(issuer="Bank Portal")

    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    response = logged_in.post("/security/mfa/totp/add/", {"code": wrong, "name": "My phone"})
    assert response.status_code == 400
    device.refresh_from_db()
    assert not device.confirmed
    assert services.methods_for(user=user) == []

    response = logged_in.post("/security/mfa/totp/add/", {"code": totp.now(), "name": "My phone"})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed and device.name == "My phone"
    assert services.methods_for(user=user) == ["totp"]
    assert services.preferred_method(user=user) == "totp"
    assert [e.details["method"] for e in events("mfa.enrolled", user)] == ["totp"]
    run_outbox()
    assert any("second factor was added" in m.body for m in outbox)
    # The seed is encrypted at rest.
    assert totp.secret not in device.key_encrypted


@pytest.mark.parametrize(("offset", "accepted"), [(0, True), (-30, True), (30, True), (-60, False), (60, False)])
def test_totp_window_is_one_step_either_side(
    user: User, add_totp: Callable[..., Any], time_machine: Any, offset: int, accepted: bool
) -> None:
    time_machine.move_to(T0, tick=False)
    _device, totp = add_totp(user)
    code = totp.at(T0 + timedelta(seconds=offset))
    if accepted:
        assert services.code_verify(user=user, method="totp", code=code, purpose="login") == "otp"
        assert events("mfa.verified", user)[-1].details["method"] == "totp"
    else:
        with pytest.raises(services.InvalidCode):
            services.code_verify(user=user, method="totp", code=code, purpose="login")
        assert events("mfa.failed", user)[-1].reason == "wrong_code"


def test_a_totp_code_is_accepted_once(user: User, add_totp: Callable[..., Any], time_machine: Any) -> None:
    time_machine.move_to(T0, tick=False)
    _device, totp = add_totp(user)
    code = totp.now()
    services.code_verify(user=user, method="totp", code=code, purpose="login")
    with pytest.raises(services.InvalidCode):
        services.code_verify(user=user, method="totp", code=code, purpose="login")
    # An older step is refused too once a newer one was used; the next step works.
    with pytest.raises(services.InvalidCode):
        services.code_verify(user=user, method="totp", code=totp.at(T0 - timedelta(seconds=30)), purpose="login")
    time_machine.move_to(T0 + timedelta(seconds=30), tick=False)
    assert services.code_verify(user=user, method="totp", code=totp.now(), purpose="login") == "otp"
