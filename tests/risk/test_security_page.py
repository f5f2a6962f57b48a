"""/security/: devices (rename, forget), geo-fence, activity in plain words; the personal data export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import User
from audit.events import EventType
from audit.models import AuditEvent
from risk.models import KnownDevice, RiskProfile
from tests.risk.conftest import SAFARI_IPHONE_UA

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _setup(settings, time_machine):
    settings.MFA_PROMPT_CUSTOMERS = False
    settings.SESSION_CONCURRENT_LIMIT = 3
    time_machine.move_to(START, tick=False)


@pytest.fixture
def signed_in(make_client, user, login, ip_in):
    phone = make_client(ip=ip_in("DE", 1), user_agent=SAFARI_IPHONE_UA)
    login(phone, user)
    client = make_client(ip=ip_in("DE"))
    assert login(client, user).status_code == 302
    return client


def events(user, type_):
    return list(AuditEvent.objects.filter(user=user, type=type_).order_by("id"))


def test_security_page_lists_devices_and_activity_in_plain_words(signed_in, user):
    page = signed_in.get("/security/").content.decode()
    assert "Your devices" in page
    assert "Firefox on Windows" in page
    assert "Mobile Safari on iOS" in page
    assert "This device" in page
    assert "Germany" in page
    assert "A sign-in came from a device we had not seen before on Firefox on Windows from Germany." in page
    assert "You signed in on Firefox on Windows from Germany." in page
    assert "style=" not in page.split("Your devices")[1]


def test_rename_and_forget_a_device(signed_in, user):
    phone = KnownDevice.objects.get(user=user, name="Mobile Safari on iOS")
    response = signed_in.post(f"/security/devices/{phone.pk}/rename/", {"name": "  My   iPhone "})
    assert response.status_code == 302
    phone.refresh_from_db()
    assert phone.name == "My iPhone"
    assert events(user, EventType.RISK_DEVICE_RENAMED)[0].details["to"] == "My iPhone"
    assert signed_in.post(f"/security/devices/{phone.pk}/rename/", {"name": ""}).status_code == 302
    phone.refresh_from_db()
    assert phone.name == "My iPhone"

    phone.trusted_until = START + timedelta(days=5)
    phone.save()
    assert signed_in.post(f"/security/devices/{phone.pk}/forget/").status_code == 302
    assert not KnownDevice.objects.filter(pk=phone.pk).exists()
    forgotten = events(user, EventType.RISK_DEVICE_FORGOTTEN)[0]
    assert forgotten.details["was_trusted"] is True


def test_someone_elses_device_is_not_found(signed_in, user, make_client, login):
    from tests.accounts.factories import UserFactory

    other: User = UserFactory()  # type: ignore[assignment]
    login(make_client(ip="192.168.1.9"), other)
    theirs = KnownDevice.objects.get(user=other)
    assert signed_in.post(f"/security/devices/{theirs.pk}/forget/").status_code == 404
    assert signed_in.post(f"/security/devices/{theirs.pk}/rename/", {"name": "mine"}).status_code == 404
    assert KnownDevice.objects.filter(pk=theirs.pk, name=theirs.name).exists()


def test_allowed_countries_are_edited_on_the_security_page(signed_in, user):
    assert signed_in.post("/security/countries/", {"countries": "de, fr"}).status_code == 302
    assert RiskProfile.objects.get(user=user).allowed_countries == ["DE", "FR"]
    page = signed_in.get("/security/").content.decode()
    assert "Sign-in is allowed only from: DE, FR" in page
    signed_in.post("/security/countries/", {"countries": "DE, XX"})
    assert RiskProfile.objects.get(user=user).allowed_countries == ["DE", "FR"]
    assert "Not a country code: XX" in signed_in.get("/security/").content.decode()
    signed_in.post("/security/countries/", {"countries": ""})
    assert RiskProfile.objects.get(user=user).allowed_countries == []
    assert len(events(user, EventType.RISK_ALLOWED_COUNTRIES_CHANGED)) == 2


def test_data_export_is_a_json_download_audited(signed_in, user):
    assert signed_in.get("/security/export/").status_code == 200
    response = signed_in.post("/security/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="bank-portal-data-')
    data = json.loads(response.content)
    assert data["profile"]["email"] == user.email
    assert {d["name"] for d in data["devices"]} == {"Firefox on Windows", "Mobile Safari on iOS"}
    assert len(data["sessions"]) == 2
    assert "bank_accounts" in data and "payments" in data
    assert any(e["type"] == "auth.login_succeeded" for e in data["security_events"])
    text = response.content.decode()
    for secret in ("device_id_hash", "session_key_hash", '"password"', user.password):
        assert secret not in text
    exported = events(user, EventType.PRIVACY_DATA_EXPORTED)
    assert len(exported) == 1
    assert exported[0].details["devices"] == 2


def test_data_export_needs_a_recent_reauthentication(signed_in, user, time_machine):
    time_machine.shift(timedelta(minutes=6))
    response = signed_in.post("/security/export/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauth/")
    assert not events(user, EventType.PRIVACY_DATA_EXPORTED)


def test_data_export_is_rate_limited(signed_in, user, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "data_export_ip": "2/h"}
    assert signed_in.post("/security/export/").status_code == 200
    assert signed_in.post("/security/export/").status_code == 200
    refused = signed_in.post("/security/export/")
    assert refused.status_code == 429
    assert "try again later" in refused.content.decode()
    assert len(events(user, EventType.PRIVACY_DATA_EXPORTED)) == 2


def test_export_service_refuses_without_recent_authentication(user, rf):
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.cache import SessionStore

    from accounts.authn import ReauthRequired
    from risk.export import personal_data_export

    request = rf.post("/security/export/")
    request.session = SessionStore()
    request.user = AnonymousUser()
    with pytest.raises(ReauthRequired):
        personal_data_export(request=request, user=user)


def test_export_resumes_after_reauthentication(signed_in, user, time_machine, password):
    from urllib.parse import parse_qs, urlparse

    time_machine.shift(timedelta(minutes=6))
    held = signed_in.post("/security/export/")
    query = parse_qs(urlparse(held["Location"]).query)
    page = signed_in.post(
        "/accounts/reauth/?" + urlparse(held["Location"]).query,
        {"kind": "password", "password": password, "next": query["next"][0], "hold": query["hold"][0]},
    )
    assert page.status_code == 200
    assert 'action="/security/export/"' in page.content.decode()
    done = signed_in.post("/security/export/", {"_reauth_hold": query["hold"][0]})
    assert done.status_code == 200
    assert json.loads(done.content)["profile"]["email"] == user.email
    assert len(events(user, EventType.PRIVACY_DATA_EXPORTED)) == 1


def test_device_forms_carry_a_working_csrf_token(user, login, ip_in):
    import re

    from django.test import Client

    from tests.conftest import FIREFOX_UA

    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=ip_in("DE"), HTTP_USER_AGENT=FIREFOX_UA)
    page = client.get("/accounts/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    signed = client.post(
        "/accounts/login/",
        {"email": user.email, "password": "correct horse battery staple", "csrfmiddlewaretoken": token.group(1)},
    )
    assert signed.status_code == 302
    page = client.get("/security/").content.decode()
    device = KnownDevice.objects.get(user=user)
    form = page.split(f'action="/security/devices/{device.pk}/rename/"')[1]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token
    renamed = client.post(
        f"/security/devices/{device.pk}/rename/", {"name": "Work laptop", "csrfmiddlewaretoken": token.group(1)}
    )
    assert renamed.status_code == 302
    device.refresh_from_db()
    assert device.name == "Work laptop"
