from __future__ import annotations

from audit.events import EventType, Outcome
from audit.models import AuditEvent


def test_customer_logs_in_and_sees_dashboard(client, user, login):
    response = login(client, user)
    assert response.status_code == 302
    # Customers without a second factor are invited (not forced) to add one.
    assert response["Location"] in ("/", "/security/mfa/welcome/?next=%2F")
    page = client.get("/")
    assert page.status_code == 200
    assert b"Your accounts" in page.content
    event = AuditEvent.objects.get(type=EventType.LOGIN_SUCCEEDED)
    assert event.user == user
    assert event.ip == "203.0.113.10"
    assert event.ua_family == "Firefox"
    assert event.details["amr"] == ["pwd"]


def test_wrong_password_and_unknown_email_get_the_same_answer(client, user):
    wrong = client.post("/accounts/login/", {"email": user.email, "password": "not the password at all"})
    unknown = client.post("/accounts/login/", {"email": "nobody@example.com", "password": "not the password at all"})
    assert wrong.status_code == unknown.status_code == 200
    assert b"The email address or password is not correct." in wrong.content
    assert b"The email address or password is not correct." in unknown.content
    failed = AuditEvent.objects.filter(type=EventType.LOGIN_FAILED, outcome=Outcome.FAILURE)
    assert failed.count() == 2
    assert failed.filter(user=user).count() == 1
    assert client.get("/").status_code == 302
