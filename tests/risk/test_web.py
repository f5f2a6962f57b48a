"""The risk engine in the web login, the device cookie, alerts, "this wasn't me", remembered devices."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.http import HttpRequest

from accounts import services as accounts_services
from accounts.models import User, UserSession
from audit.events import EventType, Outcome
from audit.models import AuditEvent
from risk.devices import COOKIE_SALT, device_id_hash
from risk.models import KnownDevice
from tests.risk.conftest import SAFARI_IPHONE_UA, risk_alert_emails

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NEW_PASSWORD = "a brand new passphrase 2026"


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture(autouse=True)
def _no_enrol_prompt(settings):
    # The MFA app's "add a second factor" prompt after a password-only login is not under test here.
    settings.MFA_PROMPT_CUSTOMERS = False


def events(user, type_):
    return list(AuditEvent.objects.filter(user=user, type=type_).order_by("id"))


def last_login_event(user):
    return AuditEvent.objects.filter(user=user, type=EventType.LOGIN_SUCCEEDED).order_by("-id").first()


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    return match.group(1)


def logged_in(client) -> bool:
    return client.get("/").status_code == 200


def test_device_cookie_is_signed_httponly_secure_samesite_and_stored_hashed(make_client, user, login, ip_in, clock):
    client = make_client(ip=ip_in("DE"))
    response = login(client, user)
    assert response.status_code == 302
    cookie = response.cookies["bp_device"]
    assert cookie["httponly"]
    assert cookie["secure"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) >= 365 * 24 * 3600
    signed = HttpRequest()
    signed.COOKIES["bp_device"] = cookie.value
    raw = str(signed.get_signed_cookie("bp_device", salt=COOKIE_SALT))
    device = KnownDevice.objects.get(user=user)
    assert device.device_id_hash == device_id_hash(raw) != raw
    assert device.name == "Firefox on Windows"
    assert device.last_country == "DE"
    assert device.last_ip == ip_in("DE")
    assert last_login_event(user).country == "DE"
    assert last_login_event(user).details["risk_action"] == "allow"


def test_a_tampered_device_cookie_counts_as_a_new_device(make_client, user, login, ip_in, clock):
    first = make_client(ip=ip_in("DE"))
    login(first, user)
    forged = make_client(ip=ip_in("DE"))
    forged.cookies["bp_device"] = first.cookies["bp_device"].value[:-3] + "abc"
    login(forged, user)
    assert len(events(user, EventType.RISK_NEW_DEVICE)) == 1
    assert KnownDevice.objects.filter(user=user).count() == 2


def test_one_alert_per_new_device_not_per_login(make_client, user, login, ip_in, clock, run_outbox):
    laptop = make_client(ip=ip_in("DE"))
    login(laptop, user)
    phone = make_client(ip=ip_in("DE", 1), user_agent=SAFARI_IPHONE_UA)
    for _ in range(3):
        clock.shift(timedelta(hours=1))
        assert login(phone, user).status_code == 302
        phone.post("/accounts/logout/")
    run_outbox()
    alerts = risk_alert_emails(mail.outbox)
    assert len(alerts) == 1
    assert alerts[0].to == [user.email]
    assert "Mobile Safari on iOS" in alerts[0].body
    assert "Germany" in alerts[0].body
    assert len(events(user, EventType.RISK_NEW_DEVICE)) == 1
    assert len(events(user, EventType.RISK_ALERT_SENT)) == 1
    assert KnownDevice.objects.filter(user=user).count() == 2
    # The login's own audit event carries the reasons.
    first_phone_login = AuditEvent.objects.filter(user=user, type=EventType.LOGIN_SUCCEEDED).order_by("id")[1]
    assert first_phone_login.details["risk_reasons"] == ["new_device"]


def test_a_denied_login_is_refused_on_the_login_page(make_client, user, login, ip_in, clock, settings):
    settings.RISK_BLOCKED_COUNTRIES = ["AU"]
    client = make_client(ip=ip_in("AU"))
    response = login(client, user)
    assert response.status_code == 403
    assert "not allowed" in response.content.decode()
    assert not logged_in(client)
    assert events(user, EventType.RISK_LOGIN_DENIED)[0].outcome == Outcome.DENIED
    assert events(user, EventType.RISK_GEO_BLOCKED)[0].country == "AU"
    assert not events(user, EventType.LOGIN_SUCCEEDED)


def test_risky_login_without_a_factor_needs_an_emailed_code(make_client, user, login, ip_in, clock, run_outbox):
    client = make_client(ip=ip_in("DE"))
    login(client, user)
    client.post("/accounts/logout/")
    clock.shift(timedelta(days=3))
    travelling = make_client(ip=ip_in("US"))
    travelling.cookies["bp_device"] = client.cookies["bp_device"].value
    response = login(travelling, user)
    assert response.status_code == 302
    # The login's second step, as for a factor: the code went to the verified address at once.
    assert response["Location"] == "/accounts/login/mfa/"
    assert not logged_in(travelling)
    page = travelling.get("/accounts/login/mfa/")
    assert b"sent a 6-digit code to your email address" in page.content
    run_outbox()
    code_mail = next(m for m in mail.outbox if m.to == [user.email] and "code" in m.subject.lower())
    code = found(r"\b(\d{6})\b", str(code_mail.body))
    wrong_code = "000000" if code != "000000" else "111111"
    wrong = travelling.post("/accounts/login/mfa/", {"method": "email", "code": wrong_code})
    assert wrong.status_code == 400
    failed = events(user, EventType.MFA_FAILED)[0]
    assert failed.outcome == Outcome.FAILURE and failed.details["purpose"] == "login_verify"
    done = travelling.post("/accounts/login/mfa/", {"method": "email", "code": code})
    assert done.status_code == 302
    assert logged_in(travelling)
    login_event = last_login_event(user)
    assert login_event.details["amr"] == ["pwd", "email"]
    assert login_event.details["risk_reasons"] == ["new_country"]
    assert login_event.country == "US"
    # A code works once: the attempt is over, the page sends the user back to the login.
    again = travelling.post("/accounts/login/mfa/", {"method": "email", "code": code})
    assert again.status_code == 302 and again["Location"].startswith("/accounts/login/")
    [sent] = events(user, EventType.MFA_CODE_SENT)
    assert sent.details["purpose"] == "login_verify"


def test_three_wrong_emailed_codes_end_the_code(make_client, user, login, ip_in, clock, run_outbox):
    client = make_client(ip=ip_in("DE"))
    login(client, user)
    clock.shift(timedelta(days=3))
    other = make_client(ip=ip_in("US"))
    login(other, user)
    run_outbox()
    code = found(r"\b(\d{6})\b", str(next(m for m in mail.outbox if "code" in m.subject.lower()).body))
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        assert other.post("/accounts/login/mfa/", {"method": "email", "code": wrong}).status_code == 400
    # Three wrong codes spend the code: the right one no longer works.
    assert other.post("/accounts/login/mfa/", {"method": "email", "code": code}).status_code == 400
    assert not logged_in(other)
    assert [e.reason for e in events(user, EventType.MFA_FAILED)][:3] == ["wrong_code"] * 3


def _mfa_login(client, user, totp, *, remember: bool) -> None:
    response = client.post("/accounts/login/", {"email": user.email, "password": "correct horse battery staple"})
    assert response["Location"] == "/accounts/login/mfa/", response.get("Location")
    data = {"method": "totp", "code": totp.now()}
    if remember:
        data["remember_device"] = "1"
    done = client.post("/accounts/login/mfa/", data)
    assert done.status_code == 302, done.content[:500]
    assert logged_in(client)


def _add_totp(user):
    import secrets

    from mfa.models import TOTPFactor
    from tests.mfa.conftest import totp_for

    device = TOTPFactor(user=user, name="Phone", confirmed=True)
    device.set_key(secrets.token_hex(20))
    device.save()
    return totp_for(device)


def test_a_remembered_device_skips_the_second_factor_until_the_password_changes(make_client, user, ip_in, clock):
    totp = _add_totp(user)
    client = make_client(ip=ip_in("DE"))
    _mfa_login(client, user, totp, remember=True)
    device = KnownDevice.objects.get(user=user)
    assert device.trusted_until == START + timedelta(days=30)
    assert events(user, EventType.RISK_DEVICE_TRUSTED)
    client.post("/accounts/logout/")

    clock.shift(timedelta(days=1))
    response = client.post("/accounts/login/", {"email": user.email, "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert last_login_event(user).details["amr"] == ["pwd"]
    client.post("/accounts/logout/")

    accounts_services.password_reset_complete(user=user, new_password=NEW_PASSWORD)
    device.refresh_from_db()
    assert device.trusted_until is None
    assert events(user, EventType.RISK_DEVICE_TRUST_ENDED)[0].reason == "password_changed"
    clock.shift(timedelta(minutes=5))
    response = client.post("/accounts/login/", {"email": user.email, "password": NEW_PASSWORD})
    assert response["Location"] == "/accounts/login/mfa/"


def test_without_remember_the_second_factor_is_asked_every_time(make_client, user, ip_in, clock):
    totp = _add_totp(user)
    client = make_client(ip=ip_in("DE"))
    _mfa_login(client, user, totp, remember=False)
    client.post("/accounts/logout/")
    clock.shift(timedelta(minutes=1))
    response = client.post("/accounts/login/", {"email": user.email, "password": "correct horse battery staple"})
    assert response["Location"] == "/accounts/login/mfa/"


def test_a_remembered_device_still_needs_the_factor_when_another_signal_fires(make_client, user, ip_in, clock):
    totp = _add_totp(user)
    client = make_client(ip=ip_in("DE"))
    _mfa_login(client, user, totp, remember=True)
    client.post("/accounts/logout/")
    clock.shift(timedelta(days=2))
    abroad = make_client(ip=ip_in("US"))
    abroad.cookies["bp_device"] = client.cookies["bp_device"].value
    response = abroad.post("/accounts/login/", {"email": user.email, "password": "correct horse battery staple"})
    assert response["Location"] == "/accounts/login/mfa/"


def test_this_wasnt_me_ends_everything(make_client, user, login, ip_in, clock, run_outbox, settings):
    settings.SESSION_CONCURRENT_LIMIT = 3
    owner = make_client(ip=ip_in("DE"))
    login(owner, user)
    KnownDevice.objects.filter(user=user).update(trusted_until=START + timedelta(days=10))
    mobile = UserSession.objects.create(user=user, kind=UserSession.Kind.MOBILE)
    clock.shift(timedelta(minutes=10))
    attacker = make_client(ip=ip_in("DE", 2), user_agent=SAFARI_IPHONE_UA)
    assert login(attacker, user).status_code == 302
    run_outbox()
    path = found(r"https://portal\.bank\.test(/security/not-me/[^\s]+/)", risk_alert_emails(mail.outbox)[0].body)

    page = owner.get(path)
    assert page.status_code == 200
    assert "Mobile Safari on iOS" in page.content.decode()
    assert owner.post(path).status_code == 302

    assert not UserSession.objects.filter(user=user, ended_at__isnull=True).exists()
    assert set(UserSession.objects.filter(user=user).values_list("end_reason", flat=True)) == {"not_me"}
    mobile.refresh_from_db()
    assert mobile.end_reason == "not_me"
    assert not logged_in(attacker)
    assert not logged_in(owner)
    user.refresh_from_db()
    assert user.must_reset_password
    assert not KnownDevice.objects.filter(user=user, trusted_until__isnull=False).exists()
    assert KnownDevice.objects.filter(user=user).count() == 1  # the reported device is forgotten
    not_me = events(user, EventType.RISK_NOT_ME)
    assert len(not_me) == 1
    assert not_me[0].details["sessions_ended"] == 3
    assert events(user, EventType.PASSWORD_RESET_REQUESTED)
    run_outbox()
    assert any("reset" in m.subject.lower() for m in mail.outbox)

    # The password alone no longer opens the account.
    again = login(make_client(ip=ip_in("DE", 2)), user)
    assert again.status_code == 403
    assert "new password" in again.content.decode()
    # Following the link again changes nothing and says it is done.
    assert "signed your account out everywhere" in owner.get(path).content.decode()
    assert len(events(user, EventType.RISK_NOT_ME)) == 1


def test_a_tampered_or_expired_not_me_link_does_nothing(make_client, user, login, ip_in, clock, run_outbox, settings):
    login(make_client(ip=ip_in("DE")), user)
    login(make_client(ip=ip_in("DE"), user_agent=SAFARI_IPHONE_UA), user)
    run_outbox()
    path = found(r"(/security/not-me/[^\s]+/)", risk_alert_emails(mail.outbox)[0].body)
    client = make_client()
    assert client.post(path[:-5] + "xxxx/").status_code == 400
    clock.shift(timedelta(seconds=settings.RISK_NOT_ME_LINK_MAX_AGE + 1))
    assert client.post(path).status_code == 400
    assert not events(user, EventType.RISK_NOT_ME)
    assert not User.objects.get(pk=user.pk).must_reset_password


def test_a_spoofed_forwarded_for_changes_neither_country_nor_device(make_client, user, login, ip_in, clock):
    client = make_client(ip=ip_in("DE"))
    login(client, user)
    client.post("/accounts/logout/")
    device = KnownDevice.objects.get(user=user)
    clock.shift(timedelta(minutes=10))
    spoofing = make_client(
        ip=ip_in("DE"), HTTP_X_FORWARDED_FOR=ip_in("AU"), HTTP_X_REAL_IP=ip_in("AU"), HTTP_X_DEVICE_ID="other"
    )
    spoofing.cookies["bp_device"] = client.cookies["bp_device"].value
    assert login(spoofing, user).status_code == 302
    event = last_login_event(user)
    assert event.country == "DE"
    assert event.ip == ip_in("DE")
    assert event.details["risk_reasons"] == []
    assert list(KnownDevice.objects.filter(user=user).values_list("pk", flat=True)) == [device.pk]
    assert not AuditEvent.objects.filter(user=user, type__startswith="risk.").exists()


def test_emailed_sign_in_codes_are_capped_per_hour(make_client, user, login, ip_in, clock, settings):
    settings.MFA_CODE_HOURLY_CAP = 2
    login(make_client(ip=ip_in("DE")), user)
    clock.shift(timedelta(days=3))
    for _ in range(2):
        assert login(make_client(ip=ip_in("US")), user)["Location"] == "/accounts/login/mfa/"
        clock.shift(timedelta(seconds=settings.MFA_CODE_RESEND_COOLDOWN_SECONDS + 1))
    refused = login(make_client(ip=ip_in("US")), user)
    assert refused.status_code == 429
    assert "Too many codes were sent" in refused.content.decode()
    assert len(events(user, EventType.MFA_CODE_SENT)) == 2
    assert events(user, EventType.RATE_LIMITED)[0].reason == "mfa_code_hourly_cap"
