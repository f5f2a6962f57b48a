from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from accounts.models import User, UserSession
from audit.events import EventType
from audit.models import AuditEvent


def test_login_gives_a_new_session_key_with_safe_cookie_flags(client, user, login):
    client.get("/accounts/login/")
    before = client.cookies.get(settings.SESSION_COOKIE_NAME)
    response = login(client, user)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert before is None or cookie.value != before.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["secure"] is True
    row = UserSession.objects.get(user=user)
    assert row.kind == "web"
    assert row.session_key_hash and cookie.value not in row.session_key_hash


def test_a_second_login_ends_the_first_session_and_says_why(make_client, user, login):
    first, second = make_client(ip="203.0.113.1"), make_client(ip="203.0.113.2")
    login(first, user)
    assert first.get("/").status_code == 200
    login(second, user)
    response = first.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?reason=session_limit"
    page = first.get(response["Location"])
    assert b"signed in somewhere else" in page.content
    assert second.get("/").status_code == 200
    assert first.get("/").status_code == 302
    ended = AuditEvent.objects.get(type=EventType.SESSION_ENDED)
    assert ended.reason == "session_limit" and ended.user == user


@override_settings(SESSION_CONCURRENT_LIMIT=2)
def test_the_session_limit_is_a_setting(make_client, user, login):
    clients = [make_client(ip=f"203.0.113.{n}") for n in range(1, 4)]
    for c in clients:
        login(c, user)
    assert [c.get("/").status_code for c in clients] == [302, 200, 200]


def test_user_ends_another_session_from_the_security_page(make_client, user, login):
    with override_settings(SESSION_CONCURRENT_LIMIT=2):
        laptop, phone = make_client(ip="203.0.113.1"), make_client(ip="203.0.113.2")
        login(laptop, user)
        login(phone, user)
        page = laptop.get("/security/")
        assert page.status_code == 200
        phone_session = UserSession.objects.get(user=user, ip="203.0.113.2")
        assert str(phone_session.id).encode() in page.content
        response = laptop.post(f"/security/sessions/{phone_session.id}/end/")
        assert response.status_code == 302
        assert phone.get("/").status_code == 302
        assert laptop.get("/").status_code == 200
    event = AuditEvent.objects.get(type=EventType.SESSION_ENDED)
    assert event.actor == user and event.reason == "ended_by_user"


def test_ending_someone_elses_session_is_not_found(make_client, user, login):
    from tests.accounts.factories import UserFactory

    other: User = UserFactory()  # type: ignore[assignment]
    mine, theirs = make_client(ip="203.0.113.1"), make_client(ip="203.0.113.2")
    login(mine, user)
    login(theirs, other)
    their_session = UserSession.objects.get(user=other)
    assert mine.post(f"/security/sessions/{their_session.id}/end/").status_code == 404
    assert theirs.get("/").status_code == 200


def test_an_ended_session_cannot_be_used_even_if_redis_forgot_the_revocation(client, user, login, time_machine):
    from django.core.cache import cache

    time_machine.move_to(timezone.now(), tick=False)
    login(client, user)
    row = UserSession.objects.get(user=user)
    UserSession.objects.filter(pk=row.pk).update(ended_at=timezone.now(), end_reason="ended_by_staff")
    cache.delete(f"revoked-sid:{row.pk}")
    time_machine.shift(timedelta(seconds=settings.SESSION_TOUCH_INTERVAL + 1))
    response = client.get("/")
    assert response.status_code == 302
    assert "reason=ended_by_staff" in response["Location"]


def test_absolute_lifetime_ends_an_active_session(client, user, login, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    login(client, user)
    statuses = []
    for _ in range(25):  # active every 29 minutes, never idle
        time_machine.shift(timedelta(minutes=29))
        response = client.get("/")
        statuses.append(response.status_code)
        if response.status_code != 200:
            break
    assert statuses[:24] == [200] * 24  # 24 x 29 min = 11 h 36 min
    assert response.status_code == 302
    assert "reason=expired" in response["Location"]
    assert UserSession.objects.get(user=user).end_reason == "expired"


def test_logout_is_post_only_and_ends_the_session_server_side(client, user, login):
    login(client, user)
    assert client.get("/accounts/logout/").status_code == 405
    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert AuditEvent.objects.filter(type=EventType.LOGOUT, user=user).count() == 1
    assert UserSession.objects.get(user=user).end_reason == "logout"
    client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie
    assert client.get("/").status_code == 302


def test_end_all_other_sessions(make_client, user, login):
    with override_settings(SESSION_CONCURRENT_LIMIT=3):
        a, b, c = (make_client(ip=f"203.0.113.{n}") for n in (1, 2, 3))
        for x in (a, b, c):
            login(x, user)
        a.post("/security/sessions/end-others/")
        assert [x.get("/").status_code for x in (a, b, c)] == [200, 302, 302]


def test_idle_timeout_ends_the_session(client, user, login, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    login(client, user)
    time_machine.shift(timedelta(minutes=29))
    assert client.get("/").status_code == 200
    time_machine.shift(timedelta(minutes=30, seconds=1))
    response = client.get("/")
    assert response.status_code == 302
    assert "reason=idle" in response["Location"]
    assert UserSession.objects.get(user=user).end_reason == "idle"


def test_re_authenticating_does_not_extend_the_absolute_lifetime(client, user, login, password, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    login(client, user)
    for _ in range(24):
        time_machine.shift(timedelta(minutes=29))
        client.post("/accounts/reauth/", {"password": password})
    assert client.session["auth_time"] - client.session["login_at"] > 11 * 3600  # re-auth did happen
    time_machine.shift(timedelta(minutes=29))
    response = client.get("/")
    assert response.status_code == 302
    assert "reason=expired" in response["Location"]
