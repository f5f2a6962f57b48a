"""Enrolling SMS and email codes in the browser, the security page, and the staff reset."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import parse_qs

import pytest
import responses
from django.conf import settings
from django.test import Client

from accounts.models import User
from mfa import services
from mfa.models import EmailFactor, MFAState, SMSFactor, TOTPFactor
from tests.accounts.factories import UserFactory
from tests.mfa.conftest import events

TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"


@pytest.fixture
def twilio() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.POST,
            TWILIO_URL,
            json={"sid": "SM" + "2" * 32, "status": "queued", "account_sid": settings.TWILIO_ACCOUNT_SID},
            status=201,
        )
        yield mock


def test_enrol_sms_in_the_browser(
    logged_in: Client, user: User, twilio: responses.RequestsMock, run_outbox: Callable[[], int]
) -> None:
    assert logged_in.get("/security/mfa/sms/add/").status_code == 200
    bad = logged_in.post("/security/mfa/sms/add/", {"step": "send", "phone": "07700 900123"})
    assert bad.status_code == 400 and b"country code" in bad.content
    page = logged_in.post("/security/mfa/sms/add/", {"step": "send", "phone": "+44 7700 900123"})
    assert page.status_code == 200 and "+44•••••123" in page.content.decode()
    run_outbox()
    form = parse_qs(str(twilio.calls[-1].request.body))
    assert form["To"] == ["+447700900123"] and form["From"] == [settings.TWILIO_FROM_NUMBER]
    code = re.search(r"\b(\d{6})\b", form["Body"][0]).group(1)  # type: ignore[union-attr]
    assert "add this phone number" in form["Body"][0]
    assert not SMSFactor.objects.get(user=user).confirmed
    done = logged_in.post("/security/mfa/sms/add/", {"step": "confirm", "code": code, "name": "Work phone"})
    assert done.status_code == 302
    factor = SMSFactor.objects.get(user=user)
    assert factor.confirmed and factor.name == "Work phone"
    assert services.methods_for(user=user) == ["sms"]
    assert events("mfa.enrolled", user)[-1].details["method"] == "sms"


def test_enrol_email_codes_in_the_browser(
    logged_in: Client, user: User, outbox: list[Any], run_outbox: Callable[[], int]
) -> None:
    page = logged_in.post("/security/mfa/email/add/", {"step": "send"})
    assert page.status_code == 200
    run_outbox()
    code = re.search(r"\b(\d{6})\b", outbox[-1].body).group(1)  # type: ignore[union-attr]
    wrong = logged_in.post(
        "/security/mfa/email/add/", {"step": "confirm", "code": "000000" if code != "000000" else "1"}
    )
    assert wrong.status_code == 400
    assert not EmailFactor.objects.get(user=user).confirmed
    done = logged_in.post("/security/mfa/email/add/", {"step": "confirm", "code": code})
    assert done.status_code == 302 and done["Location"] == "/security/mfa/recovery-codes/"
    assert EmailFactor.objects.get(user=user).confirmed


def test_security_page_lists_renames_and_sets_preferred(
    logged_in: Client, user: User, add_totp: Callable[..., Any], add_email: Callable[..., Any]
) -> None:
    device, _ = add_totp(user, name="Phone")
    add_email(user)
    html = logged_in.get("/security/").content.decode()
    assert "Second factors" in html and "Authenticator app" in html and "Email code" in html
    assert html.index("Second factors") < html.index("signed in")
    assert 'name="method"' in html  # the preferred choice
    logged_in.post(f"/security/mfa/totp/{device.pk}/rename/", {"name": "  Old   phone "})
    device.refresh_from_db()
    assert device.name == "Old phone"
    assert events("mfa.renamed", user)
    response = logged_in.post("/security/mfa/preferred/", {"method": "email"})
    assert response.status_code == 302
    assert services.preferred_method(user=user) == "email"
    # Someone else's factor is not found.
    other = UserFactory()
    other_device, _ = add_totp(other)
    logged_in.post(f"/security/mfa/totp/{other_device.pk}/rename/", {"name": "mine"})
    other_device.refresh_from_db()
    assert other_device.name != "mine"
    logged_in.post(f"/security/mfa/totp/{other_device.pk}/remove/")
    assert TOTPFactor.objects.filter(pk=other_device.pk).exists()


def test_staff_reset_removes_every_factor(
    user: User,
    add_totp: Callable[..., Any],
    add_email: Callable[..., Any],
    outbox: list[Any],
    run_outbox: Callable[[], int],
) -> None:
    add_totp(user)
    add_email(user)
    services.recovery_codes_generate(request=None, user=user)
    staff = cast(User, UserFactory(is_staff=True))
    with pytest.raises(services.MFAError):
        services.mfa_reset(user=user, actor=UserFactory(), reason="not staff")
    services.mfa_reset(user=user, actor=staff, reason="lost phone, identity checked by call-back")
    assert services.methods_for(user=user) == []
    assert not services.has_second_factor(user=user)
    [event] = events("mfa.reset_by_staff", user)
    assert event.actor_id == staff.pk and "lost phone" in event.reason
    assert MFAState.objects.get(user=user).preferred_method == ""
    run_outbox()
    assert any("reset by the bank" in m.body for m in outbox)
