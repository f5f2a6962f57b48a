from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from accounts.models import User, UserSession
from audit.events import EventType, Outcome
from audit.models import AuditEvent
from notifications.models import OutboxMessage

LINK = re.compile(r"https://portal\.bank\.test(/accounts/[^\s\"<]+)")


def _last_link(to: str) -> str:
    message = [m for m in mail.outbox if to in m.to][-1]
    match = LINK.search(str(message.body))
    assert match, message.body
    return match.group(1)


def _signup(client, email="new.customer@example.com", pw="a long and unusual passphrase"):
    return client.post(
        "/accounts/signup/",
        {"full_name": "New Customer", "email": email, "new_password1": pw, "new_password2": pw},
    )


def test_signup_verify_then_login(client, run_outbox):
    response = _signup(client)
    assert response.status_code == 302
    user = User.objects.get(email="new.customer@example.com")
    assert not user.email_verified
    assert user.groups.filter(name="customer").exists()
    assert identify_hasher(user.password).algorithm == "argon2"
    assert user.password.startswith("argon2$argon2id$")
    run_outbox()
    link = _last_link("new.customer@example.com")

    refused = client.post(
        "/accounts/login/", {"email": "new.customer@example.com", "password": "a long and unusual passphrase"}
    )
    assert b"verify your email address first" in refused.content

    assert client.get(link).status_code == 200
    user.refresh_from_db()
    assert user.email_verified
    again = client.get(link)
    assert again.status_code == 400 and b"already been used" in again.content

    ok = client.post(
        "/accounts/login/", {"email": "new.customer@example.com", "password": "a long and unusual passphrase"}
    )
    assert ok.status_code == 302
    types = list(AuditEvent.objects.filter(user=user).values_list("type", flat=True))
    assert EventType.SIGNUP in types and EventType.EMAIL_VERIFIED in types


def test_verification_link_expires(client, run_outbox, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    _signup(client)
    run_outbox()
    link = _last_link("new.customer@example.com")
    time_machine.shift(timedelta(seconds=settings.EMAIL_VERIFICATION_MAX_AGE + 1))
    response = client.get(link)
    assert response.status_code == 400 and b"expired" in response.content
    assert not User.objects.get(email="new.customer@example.com").email_verified


def test_signup_with_a_taken_email_looks_the_same_and_warns_the_owner(client, user, run_outbox):
    taken = _signup(client, email=user.email.upper())
    fresh = _signup(client, email="someone.else@example.com")
    assert taken.status_code == fresh.status_code == 302
    assert taken["Location"] == fresh["Location"]
    assert User.objects.filter(email=user.email).count() == 1
    run_outbox()
    assert "already have an account" in [m for m in mail.outbox if user.email in m.to][-1].body


def test_password_rules(client):
    cases = {
        "short": "too short1",
        "common": "password1234",
        "similar": "new.customer@example.com",
    }
    for pw in cases.values():
        response = _signup(client, pw=pw)
        assert response.status_code == 200
        assert b"errorlist" in response.content
    too_long = "x" * 129
    assert b"too long" in _signup(client, pw=too_long).content
    assert _signup(client, pw="y" * 20 + " correct horse " + "z" * 93).status_code == 302  # 128 is fine
    assert User.objects.count() == 1


def test_argon2_defaults_are_at_least_owasp():
    from config.settings import base

    # One of OWASP's equivalent argon2id sets (memory MiB, passes), or stronger in both.
    owasp = [(46, 1), (19, 2), (12, 3), (9, 4), (7, 5)]
    assert any(m * 1024 <= base.ARGON2_MEMORY_COST_KIB and t <= base.ARGON2_TIME_COST for m, t in owasp), (
        base.ARGON2_MEMORY_COST_KIB,
        base.ARGON2_TIME_COST,
    )
    assert base.ARGON2_PARALLELISM == 1
    assert base.PASSWORD_HASHERS[0] == "accounts.hashers.ConfigurableArgon2PasswordHasher"
    with override_settings(ARGON2_MEMORY_COST_KIB=19 * 1024, ARGON2_TIME_COST=2, ARGON2_PARALLELISM=1):
        user = User(email="x@example.com")
        user.set_password("a long and unusual passphrase")
        assert "$m=19456,t=2,p=1$" in user.password


def test_password_reset_answers_the_same_for_known_and_unknown_emails(client, user, run_outbox):
    known = client.post("/accounts/password/reset/", {"email": user.email})
    unknown = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert client.get(known["Location"]).content == client.get(unknown["Location"]).content
    run_outbox()
    assert [m.to for m in mail.outbox] == [[user.email]]
    assert AuditEvent.objects.filter(type=EventType.PASSWORD_RESET_REQUESTED, user=user).count() == 1
    assert AuditEvent.objects.filter(type=EventType.PASSWORD_RESET_REQUESTED, outcome=Outcome.INFO).count() == 1


def test_password_reset_link_is_single_use_and_ends_every_session(make_client, user, login, run_outbox):
    with override_settings(SESSION_CONCURRENT_LIMIT=2):
        browser = make_client(ip="203.0.113.1")
        login(browser, user)
        login(make_client(ip="203.0.113.2"), user)
    resetting = make_client(ip="203.0.113.3")
    resetting.post("/accounts/password/reset/", {"email": user.email})
    run_outbox()
    link = _last_link(user.email)
    form_page = resetting.get(link, follow=True)
    assert form_page.status_code == 200 and b"Choose a new password" in form_page.content
    new = "a completely new passphrase"
    done = resetting.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert browser.get("/").status_code == 302
    assert UserSession.objects.filter(user=user, ended_at__isnull=True).count() == 0
    assert AuditEvent.objects.filter(type=EventType.PASSWORD_RESET_COMPLETED, user=user).count() == 1
    reused = make_client(ip="203.0.113.4").get(link, follow=True)
    assert b"can no longer be used" in reused.content


def test_reset_links_use_the_configured_host_not_the_request_host(make_client, user, run_outbox):
    make_client(HTTP_HOST="localhost").post("/accounts/password/reset/", {"email": user.email})
    run_outbox()
    body = mail.outbox[-1].body
    assert "https://portal.bank.test/accounts/password/reset/" in body
    assert "localhost" not in body


def test_password_change_needs_the_current_password_and_ends_other_sessions(make_client, user, login, password):
    with override_settings(SESSION_CONCURRENT_LIMIT=2):
        here, there = make_client(ip="203.0.113.1"), make_client(ip="203.0.113.2")
        login(there, user)
        login(here, user)
        new = "another strong passphrase"
        wrong = here.post(
            "/accounts/password/change/",
            {"old_password": "not it at all", "new_password1": new, "new_password2": new},
        )
        assert wrong.status_code == 200 and b"current password is not correct" in wrong.content
        ok = here.post(
            "/accounts/password/change/",
            {"old_password": password, "new_password1": new, "new_password2": new},
        )
        assert ok.status_code == 302
        assert here.get("/").status_code == 200
        assert there.get("/").status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert AuditEvent.objects.filter(type=EventType.PASSWORD_CHANGED, user=user).count() == 1
    assert OutboxMessage.objects.filter(user=user, purpose="password_changed").count() == 1
