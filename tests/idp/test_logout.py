"""Single sign-out: RP-initiated logout, back-channel logout tokens through the outbox (a real
requests POST to a local fake receiver that is down at first), connected apps on /security/."""

from __future__ import annotations

from typing import Any

import requests
import time_machine
from django.test import Client as DjangoClient
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet
from rest_framework.test import APIClient

from accounts.models import User, UserSession
from audit.models import AuditEvent
from idp.models import AccessToken, Consent
from notifications.models import OutboxMessage
from tests.idp.conftest import RP_LOGOUT_DONE, authorize, query, rp_session


def _sign_in(
    browser: DjangoClient,
    client: Any,
    secret: str,
    http: requests.Session,
    discovery: dict[str, Any],
    scope: str = "openid read:accounts",
) -> dict[str, Any]:
    rp = rp_session(client, secret, http, scope=scope)
    response, _state, verifier, _nonce = authorize(browser, rp, discovery)
    return dict(
        rp.fetch_token(discovery["token_endpoint"], authorization_response=response["Location"], code_verifier=verifier)
    )


def _api_status(token: str) -> int:
    return (
        APIClient(REMOTE_ADDR="198.51.100.7").get("/api/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {token}").status_code
    )


def test_rp_initiated_logout_ends_the_portal_session_and_its_tokens(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    token = _sign_in(browser, client, secret, http, discovery)
    sid = UserSession.objects.get(user=user, ended_at__isnull=True).id
    response = browser.get(
        "/o/logout/",
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": RP_LOGOUT_DONE, "state": "bye"},
        secure=True,
    )
    assert response.status_code == 302 and response["Location"] == RP_LOGOUT_DONE + "?state=bye"
    assert UserSession.objects.get(id=sid).ended_at is not None
    assert _api_status(token["access_token"]) == 401  # at once, not at expiry
    assert AuditEvent.objects.filter(type="oidc.logout", details__client_id=client.client_id).exists()
    assert AuditEvent.objects.filter(type="auth.logout", user=user).exists()
    assert browser.get("/security/").status_code == 302  # signed out of the portal too


def test_rp_initiated_logout_refuses_an_unregistered_redirect(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    token = _sign_in(browser, client, secret, http, discovery)
    response = browser.get(
        "/o/logout/",
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": "https://evil.example/"},
        secure=True,
    )
    assert response.status_code == 400
    assert _api_status(token["access_token"]) == 200  # nothing ended


def test_logout_without_a_hint_asks_first(browser: DjangoClient, user: User) -> None:
    page = browser.get("/o/logout/", secure=True)
    assert page.status_code == 200 and b"Sign out of" in page.content
    assert UserSession.objects.filter(user=user, ended_at__isnull=True).exists()
    done = browser.post("/o/logout/", {"allow": "Logout"}, secure=True)
    assert done.status_code == 302
    assert not UserSession.objects.filter(user=user, ended_at__isnull=True).exists()


def test_backchannel_logout_is_delivered_after_the_client_was_down(
    browser: DjangoClient,
    user: User,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
    issuer: str,
    logout_receiver: Any,
    run_outbox: Any,
) -> None:
    receiver = logout_receiver(refuse_first=1)
    client, secret = make_oidc_client(backchannel_logout_uri=receiver.url)
    other, other_secret = make_oidc_client(name="No back-channel")
    _sign_in(browser, client, secret, http, discovery)
    _sign_in(browser, other, other_secret, http, discovery)
    sid = str(UserSession.objects.get(user=user, ended_at__isnull=True).id)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        browser.post("/accounts/logout/")  # signing out of the portal
        message = OutboxMessage.objects.get(channel="webhook")
        assert message.recipient == receiver.url and message.status == "pending"
        run_outbox()  # the client is down
        message.refresh_from_db()
        assert receiver.refused == 1 and message.status == "pending" and message.attempts == 1
        assert "503" in message.last_error
        clock.shift(60)
        run_outbox()  # the resend delivers
        message.refresh_from_db()
        assert message.status == "sent" and message.body_encrypted == ""

    assert len(receiver.received) == 1
    raw = receiver.received[0]["logout_token"][0]
    keys = KeySet.import_key_set(http.get(discovery["jwks_uri"]).json())
    token = jwt.decode(raw, keys, algorithms=["RS256"])
    assert token.header["typ"] == "logout+jwt"
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client.client_id},
        iat={"essential": True},
        jti={"essential": True},
    )
    with time_machine.travel(int(token.claims["iat"]) + 30, tick=False):
        registry.validate(token.claims)
    assert token.claims["sid"] == sid and token.claims["sub"] == str(user.public_id)
    assert token.claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in token.claims
    queued = AuditEvent.objects.get(type="oidc.backchannel_logout_queued")
    assert queued.details["client_id"] == client.client_id and queued.details["sid"] == sid


def test_ending_a_session_from_security_notifies_the_clients_it_used(
    browser: DjangoClient,
    user: User,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
    logout_receiver: Any,
    run_outbox: Any,
) -> None:
    receiver = logout_receiver()
    client, secret = make_oidc_client(backchannel_logout_uri=receiver.url)
    _sign_in(browser, client, secret, http, discovery)
    session = UserSession.objects.get(user=user, ended_at__isnull=True)
    other_browser = DjangoClient(REMOTE_ADDR="203.0.113.10")
    other_browser.force_login(user)
    from accounts import services as account_services

    account_services.session_end_for_user(user=user, session_id=str(session.id))
    run_outbox()
    assert len(receiver.received) == 1


def test_connected_apps_lists_and_revokes_an_app_and_its_tokens(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client(name="Reporting tool", trusted=True)
    token = _sign_in(browser, client, secret, http, discovery)
    page = browser.get("/security/apps/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Reporting tool" in text and "See your bank accounts and their balances" in text
    consent = Consent.objects.get(user=user, client=client)
    assert consent.last_used_at is not None
    Consent.objects.filter(pk=consent.pk).update(last_used_at=None)
    assert _api_status(token["access_token"]) == 200  # using the API counts as using the app
    consent.refresh_from_db()
    assert consent.last_used_at is not None
    revoked = browser.post(f"/security/apps/{client.pk}/revoke/")
    assert revoked.status_code == 302
    assert not Consent.objects.filter(user=user, client=client).exists()
    assert not AccessToken.objects.filter(application=client).exists()
    assert _api_status(token["access_token"]) == 401
    event = AuditEvent.objects.get(type="oauth.grant_revoked")
    assert event.details["client_id"] == client.client_id and event.user == user
    # The portal session itself goes on.
    assert browser.get("/security/apps/").status_code == 200
    assert "Reporting tool" not in browser.get("/security/apps/").content.decode()


def test_revoking_needs_post_and_another_users_app_is_not_touched(
    browser: DjangoClient, user: User, make_oidc_client: Any
) -> None:
    client, _secret = make_oidc_client()
    assert browser.get(f"/security/apps/{client.pk}/revoke/").status_code == 405
    assert browser.post("/security/apps/999999/revoke/").status_code == 404
    assert query("https://x/?a=1") == {"a": "1"}


def test_a_cross_site_logout_request_without_the_strict_cookie_gets_one_same_origin_hop(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    token = _sign_in(browser, client, secret, http, discovery)
    cookieless = DjangoClient(REMOTE_ADDR="203.0.113.10")
    params = {"id_token_hint": token["id_token"], "post_logout_redirect_uri": RP_LOGOUT_DONE}
    hop = cookieless.get("/o/logout/", params, secure=True, headers={"Sec-Fetch-Site": "cross-site"})
    assert hop.status_code == 200 and hop.context["url"].startswith("/o/logout/?")
    done = browser.get(hop.context["url"], secure=True, headers={"Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 302 and done["Location"] == RP_LOGOUT_DONE
    assert not UserSession.objects.filter(user=user, ended_at__isnull=True).exists()
