"""The login pipeline (accounts/pipeline.py): every path ends in the same finish, with the same gates.

Through the web and the API: the security-group member without a strong factor is sent to
enrolment after every path; a risky API login of a customer without a factor completes with a
code to the verified address (no dead end); concurrent wrong codes against one mfa_token are
never checked more often than the limit.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection, connections
from django.test import Client

from accounts import pipeline
from accounts.models import User
from audit.events import EventType
from audit.models import AuditEvent
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory
from tests.mfa.conftest import add_totp as add_totp  # the fixture
from tests.risk.conftest import FIREFOX_UA
from tests.risk.conftest import ip_in as ip_in  # the fixture


def _new_user() -> User:
    return cast(User, UserFactory())


START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(time_machine: Any) -> Any:
    time_machine.move_to(START, tick=False)
    return time_machine


def _security_member() -> User:
    user = _new_user()
    group, _ = Group.objects.get_or_create(name="security")
    user.groups.add(group)
    return user


def _code_from_mail(user: User) -> str:
    from notifications.tasks import outbox_resend_pending

    outbox_resend_pending()
    body = next(m.body for m in reversed(mail.outbox) if m.to == [user.email] and "code" in m.subject.lower())
    match = re.search(r"\b(\d{6})\b", str(body))
    assert match
    return match.group(1)


def _web(ip: str) -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=FIREFOX_UA)


def _login(client: Client, user: User) -> Any:
    return client.post("/accounts/login/", {"email": user.email, "password": DEFAULT_PASSWORD})


def test_security_member_without_a_strong_factor_is_sent_to_enrolment_after_a_password(clock: Any) -> None:
    member = _security_member()
    client = _web("203.0.113.10")
    response = _login(client, member)
    assert response.status_code == 302 and response["Location"] == "/security/mfa/required/"
    # Signed in, but held on the enrolment pages: the reports stay shut.
    assert client.get("/reports/")["Location"] == "/security/mfa/required/"
    assert client.get("/security/mfa/totp/add/").status_code in (200, 302)


def test_security_member_without_a_strong_factor_is_sent_to_enrolment_after_an_emailed_code(
    clock: Any, ip_in: Any
) -> None:
    """The path that skipped the gate before: a risky login, the emailed code, then a full session."""
    member = _security_member()
    home = _web(ip_in("DE"))
    assert _login(home, member)["Location"] == "/security/mfa/required/"
    home.post("/accounts/logout/")
    clock.shift(timedelta(days=3))
    abroad = _web(ip_in("US"))
    abroad.cookies["bp_device"] = home.cookies["bp_device"].value
    response = _login(abroad, member)
    assert response["Location"] == "/accounts/login/mfa/"
    done = abroad.post("/accounts/login/mfa/", {"method": "email", "code": _code_from_mail(member)})
    assert done.status_code == 302
    assert done["Location"] == "/security/mfa/required/"
    assert abroad.get("/reports/")["Location"] == "/security/mfa/required/"
    login_event = AuditEvent.objects.filter(user=member, type=EventType.LOGIN_SUCCEEDED).latest("id")
    assert login_event.details["amr"] == ["pwd", "email"]
    assert "policy" in login_event.details["mfa_reasons"]


def test_security_member_without_a_strong_factor_is_refused_by_the_api(clock: Any) -> None:
    member = _security_member()
    api = Client(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT="BankPortalApp/1.0")
    response = api.post(
        "/api/v1/auth/login",
        {"email": member.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0001"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_enrolment_required"
    assert not AuditEvent.objects.filter(user=member, type=EventType.LOGIN_SUCCEEDED).exists()


def test_risky_api_login_without_a_factor_completes_with_an_emailed_code(clock: Any, ip_in: Any) -> None:
    customer = _new_user()
    body = {"email": customer.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0001"}
    home = Client(REMOTE_ADDR=ip_in("DE"), HTTP_USER_AGENT="BankPortalApp/1.0")
    assert "access" in home.post("/api/v1/auth/login", body, content_type="application/json").json()
    clock.shift(timedelta(days=3))
    abroad = Client(REMOTE_ADDR=ip_in("US"), HTTP_USER_AGENT="BankPortalApp/1.0")
    first = abroad.post("/api/v1/auth/login", body, content_type="application/json")
    assert first.status_code == 200
    answer = first.json()
    assert answer["mfa_required"] is True and answer["methods"] == ["email"]
    challenge = abroad.post(
        "/api/v1/auth/mfa/challenge",
        {"mfa_token": answer["mfa_token"], "method": "email"},
        content_type="application/json",
    )
    assert challenge.status_code == 202
    assert challenge.json()["sent_to"] == customer.masked_email
    done = abroad.post(
        "/api/v1/auth/mfa/verify",
        {"mfa_token": answer["mfa_token"], "code": _code_from_mail(customer)},
        content_type="application/json",
    )
    assert done.status_code == 200, done.content
    assert "access" in done.json()
    login_event = AuditEvent.objects.filter(user=customer, type=EventType.LOGIN_SUCCEEDED).latest("id")
    assert login_event.details["amr"] == ["pwd", "email"]
    assert login_event.details["risk_reasons"] == ["new_country"]


def test_every_path_is_finished_by_the_one_finish(monkeypatch: Any, clock: Any, add_totp: Any) -> None:
    """A second factor, like the password alone, becomes a session only through pipeline.finish."""
    finished: list[tuple[str, list[str]]] = []
    real_finish = pipeline.finish

    def spy(attempt: pipeline.LoginAttempt) -> pipeline.Login:
        finished.append((attempt.channel, list(attempt.amr)))
        return real_finish(attempt)

    monkeypatch.setattr(pipeline, "finish", spy)
    plain, with_totp = _new_user(), _new_user()
    _device, totp = add_totp(with_totp)
    assert _login(_web("203.0.113.10"), plain).status_code == 302
    client = _web("203.0.113.11")
    assert _login(client, with_totp)["Location"] == "/accounts/login/mfa/"
    assert client.post("/accounts/login/mfa/", {"method": "totp", "code": totp.now()}).status_code == 302
    assert finished == [("web", ["pwd"]), ("web", ["pwd", "otp"])]


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_codes_never_exceed_the_mfa_token_limit(add_totp: Any, settings: Any) -> None:
    settings.API_MFA_TOKEN_MAX_ATTEMPTS = 3
    settings.MFA_LOCK_AFTER_FAILURES = 50  # the token's limit is what is measured here
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth_mfa": "1000/min"},
    }
    user = _new_user()
    _device, totp = add_totp(user)
    api = Client(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT="BankPortalApp/1.0")
    token = api.post(
        "/api/v1/auth/login",
        {"email": user.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0001"},
        content_type="application/json",
    ).json()["mfa_token"]
    wrong = f"{(int(totp.now()) + 500_000) % 1_000_000:06d}"
    start = threading.Barrier(10)
    codes: list[str] = []
    lock = threading.Lock()

    def guess() -> None:
        try:
            client = Client(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT="BankPortalApp/1.0")
            start.wait()
            response = client.post(
                "/api/v1/auth/mfa/verify",
                {"mfa_token": token, "method": "totp", "code": wrong},
                content_type="application/json",
            )
            with lock:
                codes.append(response.json()["code"])
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    connections.close_all()

    assert len(codes) == 10
    # Exactly the limit were checked (each a counted wrong code); the rest were refused unread.
    assert codes.count("invalid_code") == 3
    assert AuditEvent.objects.filter(user=user, type=EventType.MFA_FAILED, reason="wrong_code").count() == 3
    assert set(codes) - {"invalid_code"} <= {"mfa_locked", "mfa_token_invalid"}
    # And the token is gone: even the right code no longer finishes the login.
    late = api.post(
        "/api/v1/auth/mfa/verify",
        {"mfa_token": token, "method": "totp", "code": totp.now()},
        content_type="application/json",
    )
    assert late.status_code in (401, 429)
    assert not AuditEvent.objects.filter(user=user, type=EventType.LOGIN_SUCCEEDED).exists()


def _with_breached_password(password: str = "password123456") -> User:
    user = _new_user()
    user.set_password(password)  # set before the breach list knew it: the validators are not asked
    user.save(update_fields=["password"])
    return user


def test_a_breached_password_signs_in_then_must_be_changed_first(clock: Any) -> None:
    user = _with_breached_password()
    client = _web("203.0.113.10")
    response = client.post("/accounts/login/", {"email": user.email, "password": "password123456"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/change/"
    assert client.get("/")["Location"].startswith("/accounts/password/change/")
    event = AuditEvent.objects.get(user=user, type=EventType.PASSWORD_BREACHED)
    assert event.details["channel"] == "web" and "password" not in str(event.details).replace("_password", "")


def test_a_breached_password_on_the_api_is_told_to_change_it() -> None:
    user = _with_breached_password()
    api = Client(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT="BankPortalApp/1.0")
    response = api.post(
        "/api/v1/auth/login",
        {"email": user.email, "password": "password123456", "device_id": "phone-0001"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["password_change_required"] is True and "access" in response.json()
    assert AuditEvent.objects.filter(user=user, type=EventType.PASSWORD_BREACHED).count() == 1
    # A password not in the list says nothing of the kind.
    other = _new_user()
    fine = api.post(
        "/api/v1/auth/login",
        {"email": other.email, "password": DEFAULT_PASSWORD, "device_id": "phone-0002"},
        content_type="application/json",
    )
    assert "password_change_required" not in fine.json()
