"""Attack tests: CSRF, open redirects, session fixation, clickjacking, host-header poisoning,
account enumeration, oversized and deeply nested bodies."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from accounts.models import User, UserSession
from audit.models import AuditEvent

PW = "a long passphrase ok"
PUBLIC_PAGES = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
CUSTOMER_PAGES = [
    "/",
    "/security/",
    "/accounts/password/change/",
    "/payments/",
    "/payments/new/",
    "/payments/beneficiaries/",
]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and (values.get("method") or "").lower() == "post":
            self.posts.append(values.get("action") or "")


def _post_forms(client: Client, path: str) -> list[str]:
    response = client.get(path, follow=True)
    parser = _Forms()
    parser.feed(response.content.decode())
    final = response.redirect_chain[-1][0] if response.redirect_chain else path
    return [action or final for action in parser.posts]


def _state(user: User) -> tuple[int, int, str]:
    user.refresh_from_db()
    return AuditEvent.objects.count(), UserSession.objects.filter(ended_at__isnull=True).count(), user.password


def test_every_post_form_refuses_a_missing_or_wrong_csrf_token(user, password, make_client):
    browser = make_client()
    browser.post("/accounts/login/", {"email": user.email, "password": password})
    actions: set[str] = set()
    for page in PUBLIC_PAGES + CUSTOMER_PAGES:
        actions.update(_post_forms(browser, page))
    assert len(actions) >= 8, actions

    attacker = Client(enforce_csrf_checks=True, REMOTE_ADDR="203.0.113.10")
    attacker.cookies = browser.cookies  # the victim's cookies ride along, as in a cross-site request
    before = _state(user)
    for action in sorted(actions):
        missing = attacker.post(action, {"email": user.email, "password": password})
        assert missing.status_code == 403, action
        wrong = attacker.post(action, {"csrfmiddlewaretoken": "x" * 64, "email": user.email})
        assert wrong.status_code == 403, action
        assert b"Your form expired" in wrong.content
    assert _state(user) == before


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example/", "https:evil.example", "javascript:alert(1)"],
)
def test_login_never_redirects_off_site(make_client, user, password, target):
    client = make_client()
    response = client.post(f"/accounts/login/?next={target}", {"email": user.email, "password": password})
    assert response.status_code == 302
    assert response["Location"].startswith("/")
    assert not response["Location"].startswith("//")
    assert "evil.example" not in response["Location"] or "next=" in response["Location"]


def test_login_keeps_a_local_next(make_client, user, password):
    client = make_client()
    response = client.post("/accounts/login/?next=/security/", {"email": user.email, "password": password})
    assert response.status_code == 302
    assert "/security/" in response["Location"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/"])
def test_logout_and_reauth_never_redirect_off_site(make_client, user, password, target):
    client = make_client()
    client.post("/accounts/login/", {"email": user.email, "password": password})
    reauth = client.post(f"/accounts/reauth/?next={target}", {"password": password})
    assert reauth.status_code in (200, 302)
    if reauth.status_code == 302:
        assert reauth["Location"].startswith("/") and not reauth["Location"].startswith("//")
    logout = client.post(f"/accounts/logout/?next={target}")
    assert logout.status_code == 302
    assert logout["Location"].startswith("/accounts/login/")


def test_a_pre_login_session_id_is_never_kept(make_client, user, password):
    client = make_client()
    client.get("/accounts/login/")
    client.post("/accounts/login/", {"email": "nobody@example.com", "password": "wrong password here"})
    planted = client.cookies.get(settings.SESSION_COOKIE_NAME)
    client.post("/accounts/login/", {"email": user.email, "password": password})
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert planted is None or planted.value != after
    if planted is not None:
        fixated = make_client()
        fixated.cookies[settings.SESSION_COOKIE_NAME] = planted.value
        assert fixated.get("/").status_code == 302


def test_clickjacking_headers_on_every_page(make_client, user, password):
    anonymous = make_client()
    signed_in = make_client(ip="203.0.113.11")
    signed_in.post("/accounts/login/", {"email": user.email, "password": password})
    for client, pages in ((anonymous, [*PUBLIC_PAGES, "/healthz", "/api/docs/"]), (signed_in, CUSTOMER_PAGES)):
        for page in pages:
            response = client.get(page)
            assert response["X-Frame-Options"] == "DENY", page
            assert "frame-ancestors 'none'" in response["Content-Security-Policy"], page


def test_a_foreign_host_header_is_refused_and_never_reaches_a_link(make_client, user, run_outbox):
    poisoned = make_client(HTTP_HOST="evil.example")
    assert poisoned.post("/accounts/password/reset/", {"email": user.email}).status_code == 400
    forwarded = make_client(HTTP_X_FORWARDED_HOST="evil.example")
    forwarded.post("/accounts/password/reset/", {"email": user.email})
    forwarded.post(
        "/accounts/signup/",
        {
            "full_name": "N",
            "email": "n@example.com",
            "new_password1": "a long passphrase ok",
            "new_password2": "a long passphrase ok",
        },
    )
    run_outbox()
    assert mail.outbox
    for message in mail.outbox:
        assert "evil.example" not in message.body
        links = re.findall(r"https?://[^\s\"<]+", str(message.body))
        assert all(link.startswith(settings.PUBLIC_BASE_URL) for link in links), links


def _normalise(html: bytes) -> str:
    text = html.decode()
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
    text = re.sub(r'name="email" value="[^"]*"', 'name="email"', text)  # the address typed is echoed back
    return re.sub(r'nonce="[^"]+"', "", text)


def test_login_reset_and_signup_do_not_reveal_which_emails_exist(make_client, user, monkeypatch):
    from accounts.hashers import ConfigurableArgon2PasswordHasher

    hashed: list[str] = []
    original_encode = ConfigurableArgon2PasswordHasher.encode
    original_verify = ConfigurableArgon2PasswordHasher.verify

    def counting_encode(self, password, salt):  # type: ignore[no-untyped-def]
        hashed.append("encode")
        return original_encode(self, password, salt)

    def counting_verify(self, password, encoded):  # type: ignore[no-untyped-def]
        hashed.append("verify")
        return original_verify(self, password, encoded)

    # Counting (not replacing) the real argon2 work: a known and an unknown email cost one hash each.
    monkeypatch.setattr(ConfigurableArgon2PasswordHasher, "encode", counting_encode)
    monkeypatch.setattr(ConfigurableArgon2PasswordHasher, "verify", counting_verify)

    answers = {}
    for label, email in (("known", user.email), ("unknown", "nobody@example.com")):
        client = make_client(ip="203.0.113.10" if label == "known" else "203.0.113.20")
        hashed.clear()
        login = client.post("/accounts/login/", {"email": email, "password": "a wrong password here"})
        login_work = len(hashed)
        reset = client.post("/accounts/password/reset/", {"email": email})
        signup = client.post(
            "/accounts/signup/",
            {
                "full_name": "A",
                "email": email,
                "new_password1": "a long passphrase ok",
                "new_password2": "a long passphrase ok",
            },
        )
        answers[label] = (
            login.status_code,
            _normalise(login.content),
            login_work,
            reset.status_code,
            reset["Location"],
            signup.status_code,
            signup["Location"],
        )
    assert answers["known"] == answers["unknown"]
    assert answers["known"][2] >= 1  # an unknown email still pays for one argon2 hash


@pytest.mark.parametrize("size", [3 * 1024 * 1024])
def test_an_oversized_body_is_refused_without_a_500(make_client, size):
    client = make_client()
    body = json.dumps({"email": "a@example.com", "password": "x" * size})
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.json()["code"]
    form = client.post("/accounts/login/", {"email": "a@example.com", "password": "y" * size})
    assert 400 <= form.status_code < 500


def test_deeply_nested_json_is_refused_without_a_500(make_client):
    client = make_client()
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/v1/auth/login", data=deep, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.json()["code"]
