"""ASVS 4.0.3 Level 2 requirements that no other test covered (see docs/security/asvs-l2.md)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.conftest import FIREFOX_UA


def test_2_1_3_the_whole_password_counts_no_truncation(user: Any, make_client: Any) -> None:
    long_password = "a long passphrase " * 6 + "x" * 20  # 128 characters, the maximum
    assert len(long_password) <= settings.PASSWORD_MAX_LENGTH
    user.set_password(long_password)
    user.save()
    assert not user.check_password(long_password[:-1]) and not user.check_password(long_password[:72])
    client = make_client()
    assert client.post("/accounts/login/", {"email": user.email, "password": long_password[:-1]}).status_code != 302
    assert client.post("/accounts/login/", {"email": user.email, "password": long_password}).status_code == 302


def test_2_1_4_any_unicode_password_works(user: Any, make_client: Any) -> None:
    password = "パスワード 🙂 ünïcødé  with  spaces"
    user.set_password(password)
    user.save()
    response = make_client().post("/accounts/login/", {"email": user.email, "password": password})
    assert response.status_code == 302


def test_2_1_11_password_fields_welcome_password_managers_and_paste(client: Client) -> None:
    login = client.get("/accounts/login/").content.decode()
    signup = client.get("/accounts/signup/").content.decode()
    assert 'autocomplete="current-password"' in login
    assert signup.count('autocomplete="new-password"') == 2
    for page in (login, signup):
        assert "onpaste" not in page.lower() and "oncopy" not in page.lower()


@pytest.mark.parametrize(
    "path", ["/static/", "/static/css/", "/static/js/", "/.git/HEAD", "/.env", "/.DS_Store", "/Thumbs.db", "/media/"]
)
def test_4_3_2_no_directory_listing_and_no_metadata_files(path: str) -> None:
    response = Client(HTTP_USER_AGENT=FIREFOX_UA).get(path)
    assert response.status_code == 404


def test_7_3_1_log_lines_are_json_so_a_newline_cannot_forge_an_entry() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter_config = settings.LOGGING["formatters"]["json"]  # type: ignore[index]
    factory = logging.config.DictConfigurator({}).configure_custom(dict(formatter_config))  # type: ignore[attr-defined]
    handler.setFormatter(factory)
    logger = logging.getLogger("tests.asvs.injection")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("login failed for %s", 'eve@example.com\n{"level": "INFO", "message": "login ok for admin"}')
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 1  # the attacker's newline is escaped inside one JSON object
    entry = json.loads(lines[0])
    assert entry["level"] == "WARNING" and "login ok for admin" in entry["message"]


def test_7_3_4_times_are_utc() -> None:
    assert settings.USE_TZ is True and settings.TIME_ZONE == "UTC"
    assert timezone.now().utcoffset() is not None and timezone.now().utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_3_3_4_ending_sessions_asks_for_the_credentials_again(
    make_client: Any, user: Any, login: Any, password: str, time_machine: Any, settings: Any
) -> None:
    from datetime import timedelta

    settings.SESSION_CONCURRENT_LIMIT = 2
    time_machine.move_to(timezone.now(), tick=False)
    mine, other = make_client(ip="203.0.113.1"), make_client(ip="203.0.113.2")
    login(mine, user)
    login(other, user)
    time_machine.shift(timedelta(minutes=6))  # past the 5-minute re-authentication window
    held = mine.post("/security/sessions/end-others/")
    assert held.status_code == 302 and held["Location"].startswith("/accounts/reauth/")
    assert other.get("/").status_code == 200  # nothing ended yet
    assert mine.post("/accounts/reauth/", {"kind": "password", "password": password}).status_code in (200, 302)
    done = mine.post("/security/sessions/end-others/")
    assert done.status_code == 302 and done["Location"] == "/security/"
    assert other.get("/").status_code == 302
    assert mine.get("/").status_code == 200
