from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.events import EventType, Outcome
from audit.models import AuditEvent

WRONG = "definitely the wrong password"


def _fail(client, user, solve_captcha, times: int):
    responses = []
    for _ in range(times):
        data = {"email": user.email, "password": WRONG}
        data["altcha"] = solve_captcha(client)
        responses.append(client.post("/accounts/login/", data))
    return responses


def test_fifth_failure_locks_and_sixth_attempt_is_refused_even_with_the_right_password(
    client, user, password, solve_captcha
):
    responses = _fail(client, user, solve_captcha, 5)
    assert [r.status_code for r in responses[:4]] == [200, 200, 200, 200]
    assert responses[4].status_code == 429
    assert b"Try again after" in responses[4].content
    assert AuditEvent.objects.filter(type=EventType.LOCKOUT, user=user).count() == 1

    sixth = client.post(
        "/accounts/login/", {"email": user.email, "password": password, "altcha": solve_captcha(client)}
    )
    assert sixth.status_code == 429
    assert b"Try again after" in sixth.content
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED).count() == 0
    assert AuditEvent.objects.filter(type=EventType.LOGIN_FAILED, reason="locked", user=user).count() == 1


def test_lock_lifts_after_fifteen_minutes(client, user, password, solve_captcha, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    _fail(client, user, solve_captcha, 5)
    time_machine.shift(timedelta(minutes=14))
    still = client.post("/accounts/login/", {"email": user.email, "password": password})
    assert still.status_code == 429
    time_machine.shift(timedelta(minutes=1, seconds=1))
    ok = client.post("/accounts/login/", {"email": user.email, "password": password})
    assert ok.status_code == 302
    assert client.get("/").status_code == 200


def test_spoofed_forwarded_for_does_not_dodge_the_lockout(make_client, user, password, solve_captcha):
    for n in range(5):
        attacker = make_client(ip="198.51.100.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        attacker.post("/accounts/login/", {"email": user.email, "password": WRONG, "altcha": solve_captcha(attacker)})
    spoofing = make_client(ip="198.51.100.7", HTTP_X_FORWARDED_FOR="192.0.2.99")
    response = spoofing.post(
        "/accounts/login/", {"email": user.email, "password": password, "altcha": solve_captcha(spoofing)}
    )
    assert response.status_code == 429
    events = AuditEvent.objects.filter(type=EventType.LOGIN_FAILED, user=user)
    assert set(events.values_list("ip", flat=True)) == {"198.51.100.7"}


def test_lockout_is_per_account_and_ip(make_client, user, password, solve_captcha):
    attacker = make_client(ip="198.51.100.7")
    _fail(attacker, user, solve_captcha, 5)
    owner = make_client(ip="203.0.113.50")
    # The account is not locked for its owner elsewhere; only the proof-of-work check is asked.
    without_check = owner.post("/accounts/login/", {"email": user.email, "password": password})
    assert b"Please complete the check below" in without_check.content
    data = {"email": user.email, "password": password, "altcha": solve_captcha(owner)}
    assert owner.post("/accounts/login/", data).status_code == 302


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_one_trusted_proxy_the_forwarded_address_is_the_client(make_client, user):
    client = make_client(ip="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20")
    client.post("/accounts/login/", {"email": user.email, "password": WRONG})
    assert AuditEvent.objects.get(type=EventType.LOGIN_FAILED).ip == "198.51.100.20"


def test_captcha_is_required_after_three_failures(client, user, password):
    for _ in range(3):
        client.post("/accounts/login/", {"email": user.email, "password": WRONG})
    page = client.get("/accounts/login/")
    assert b"altcha-widget" in page.content
    refused = client.post("/accounts/login/", {"email": user.email, "password": password})
    assert refused.status_code == 200
    assert b"Please complete the check below" in refused.content
    assert client.get("/").status_code == 302


def test_a_solved_captcha_is_accepted_once(client, user, password, solve_captcha):
    for _ in range(3):
        client.post("/accounts/login/", {"email": user.email, "password": WRONG})
    payload = solve_captcha(client)
    first = client.post("/accounts/login/", {"email": user.email, "password": WRONG, "altcha": payload})
    assert b"The email address or password is not correct." in first.content
    replay = client.post("/accounts/login/", {"email": user.email, "password": password, "altcha": payload})
    assert b"The security check did not succeed" in replay.content
    assert AuditEvent.objects.filter(type=EventType.CAPTCHA_FAILED, reason="replayed").count() == 1


@override_settings(RATE_LIMITS={"login_ip": "3/m", "signup_ip": "10/h", "password_reset_ip": "10/h"})
def test_per_ip_rate_limit_on_login(make_client, user, password):
    client = make_client(ip="198.51.100.99")
    for _ in range(3):
        client.post("/accounts/login/", {"email": "someone@example.com", "password": WRONG})
    limited = client.post("/accounts/login/", {"email": user.email, "password": password})
    assert limited.status_code == 429
    assert b"Try again after" in limited.content
    assert AuditEvent.objects.filter(type=EventType.RATE_LIMITED, outcome=Outcome.DENIED, reason="login_ip").exists()
    other = make_client(ip="198.51.100.100")
    assert other.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302


@pytest.mark.parametrize("path", ["/accounts/signup/", "/accounts/password/reset/"])
def test_per_ip_rate_limit_on_signup_and_reset(make_client, path):
    client = make_client(ip="198.51.100.77")
    limits = {"login_ip": "30/m", "signup_ip": "2/h", "password_reset_ip": "2/h"}
    with override_settings(RATE_LIMITS=limits):
        statuses = [client.post(path, {"email": "x@example.com"}).status_code for _ in range(3)]
    assert statuses[-1] == 429
    assert AuditEvent.objects.filter(type=EventType.RATE_LIMITED).count() == 1
