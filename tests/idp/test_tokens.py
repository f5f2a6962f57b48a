"""Refresh rotation and reuse, client credentials, the banking API with provider tokens,
revocation (RFC 7009) and introspection (RFC 7662), with requests-oauth2client and authlib."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
import time_machine
from authlib.integrations.base_client.errors import OAuthError
from django.test import Client as DjangoClient
from requests_oauth2client import OAuth2Client
from requests_oauth2client.exceptions import InvalidScope, UnauthorizedClient
from rest_framework.test import APIClient

from accounts.models import User
from audit.models import AuditEvent
from idp.models import AccessToken, RefreshToken
from payments import services as payment_services
from tests.api.helpers import bearer, issue_tokens
from tests.idp.conftest import authorize, rp_session


def _code_tokens(
    browser: DjangoClient, client: Any, secret: str, http: requests.Session, discovery: dict[str, Any], scope: str
) -> tuple[Any, dict[str, Any]]:
    rp = rp_session(client, secret, http, scope=scope)
    response, _state, verifier, _nonce = authorize(browser, rp, discovery)
    token = rp.fetch_token(
        discovery["token_endpoint"], authorization_response=response["Location"], code_verifier=verifier
    )
    return rp, dict(token)


def _api(token: str) -> APIClient:
    api = APIClient(REMOTE_ADDR="198.51.100.7")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_grant(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    rp, first = _code_tokens(browser, client, secret, http, discovery, "openid offline_access read:accounts")
    second = dict(rp.refresh_token(discovery["token_endpoint"], refresh_token=first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    assert _api(second["access_token"]).get("/api/v1/accounts").status_code == 200
    assert _api(first["access_token"]).get("/api/v1/accounts").status_code == 401  # rotated away

    with pytest.raises(OAuthError) as reused:
        rp.refresh_token(discovery["token_endpoint"], refresh_token=first["refresh_token"])
    assert reused.value.error == "invalid_grant"
    # Theft: every token of the grant stops, the newest included.
    refused = _api(second["access_token"]).get("/api/v1/accounts")
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    with pytest.raises(OAuthError):
        rp.refresh_token(discovery["token_endpoint"], refresh_token=second["refresh_token"])
    assert not RefreshToken.objects.filter(application=client, revoked__isnull=True).exists()
    assert not AccessToken.objects.filter(application=client).exists()
    reuse = AuditEvent.objects.filter(type="oauth.refresh_reuse_detected").order_by("id").first()
    assert reuse is not None
    assert reuse.user == user and reuse.details["client_id"] == client.client_id
    assert AuditEvent.objects.filter(type="oauth.token_refreshed", details__client_id=client.client_id).count() == 1


def test_refresh_token_stops_when_its_web_login_ends(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    rp, token = _code_tokens(browser, client, secret, http, discovery, "openid offline_access read:accounts")
    browser.post("/accounts/logout/")
    assert _api(token["access_token"]).get("/api/v1/accounts").status_code == 401
    with pytest.raises(OAuthError):
        rp.refresh_token(discovery["token_endpoint"], refresh_token=token["refresh_token"])


def test_client_credentials_with_and_without_the_scope(
    user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any], issuer: str
) -> None:
    account = payment_services.account_open(owner=user, currency="EUR", name="Main", opening_balance="100.00")
    reader, reader_secret = make_oidc_client(
        name="payments-reader", grant="client-credentials", scopes="read:payments", trusted=False, owner=user
    )
    oauth = OAuth2Client.from_discovery_document(
        discovery, client_id=reader.client_id, client_secret=reader_secret, session=http
    )
    token = oauth.client_credentials(scope="read:payments")
    assert token.refresh_token is None  # client credentials: never a refresh token
    assert token.expires_in is not None and 0 < token.expires_in <= 900
    listed = _api(str(token.access_token)).get("/api/v1/payments")
    assert listed.status_code == 200, listed.content
    one_account = _api(str(token.access_token)).get("/api/v1/accounts")
    assert one_account.status_code == 403 and one_account.json()["code"] == "insufficient_scope"
    paying = _api(str(token.access_token)).post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": "NL91ABNA0417164300", "amount": "1.00", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert paying.status_code == 403 and paying.json()["code"] == "insufficient_scope"
    with pytest.raises(InvalidScope):
        oauth.client_credentials(scope="write:payments")  # not registered for it
    issued = AuditEvent.objects.get(type="oauth.token_issued")
    assert issued.details["client_id"] == reader.client_id and issued.details["grant_type"] == "client_credentials"

    # A token of the service cannot reach the endpoints that declare no scope (sessions, me).
    assert _api(str(token.access_token)).get("/api/v1/sessions").status_code == 403


def test_client_credentials_needs_the_secret(
    make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any], user: User
) -> None:
    reader, _secret = make_oidc_client(
        name="svc", grant="client-credentials", scopes="read:payments", trusted=False, owner=user
    )
    oauth = OAuth2Client.from_discovery_document(
        discovery, client_id=reader.client_id, client_secret="bps_" + "A" * 43, session=http
    )
    with pytest.raises((UnauthorizedClient, Exception)) as refused:
        oauth.client_credentials(scope="read:payments")
    assert "invalid_client" in str(refused.value) or refused.type.__name__ == "InvalidClient"
    assert not AccessToken.objects.exists()


def test_generated_secrets_use_the_keyed_hash_and_human_ones_argon2(make_oidc_client: Any) -> None:
    from idp import services

    generated, _ = make_oidc_client()
    assert generated.client_secret.startswith("idp_keyed_sha256$")
    chosen, _ = services.client_create(
        name="Chosen",
        kind="confidential",
        grant="client-credentials",
        scopes="read:payments",
        secret="my own secret phrase",
    )
    assert chosen.client_secret.startswith("argon2$")


def test_revocation_stops_the_access_token_at_once(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    _rp, token = _code_tokens(browser, client, secret, http, discovery, "openid offline_access read:accounts")
    oauth = OAuth2Client.from_discovery_document(
        discovery, client_id=client.client_id, client_secret=secret, session=http
    )
    assert oauth.introspect_token(token["access_token"])["active"] is True
    assert _api(token["access_token"]).get("/api/v1/accounts").status_code == 200
    oauth.revoke_access_token(token["access_token"])
    refused = _api(token["access_token"]).get("/api/v1/accounts")
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    assert oauth.introspect_token(token["access_token"])["active"] is False
    event = AuditEvent.objects.get(type="oauth.token_revoked")
    assert event.details["client_id"] == client.client_id


def test_a_client_learns_nothing_about_another_clients_token_unless_it_is_a_named_resource_server(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any], settings: Any
) -> None:
    owner, owner_secret = make_oidc_client()
    _rp, token = _code_tokens(browser, owner, owner_secret, http, discovery, "openid read:accounts")
    other, other_secret = make_oidc_client()

    def introspect(client: Any, secret: str) -> dict[str, Any]:
        oauth = OAuth2Client.from_discovery_document(
            discovery, client_id=client.client_id, client_secret=secret, session=http
        )
        return dict(oauth.introspect_token(token["access_token"]))

    assert introspect(owner, owner_secret)["active"] is True
    # Another registered client gets what an unknown token gets: no subject, scopes or login.
    assert introspect(other, other_secret) == {"active": False}
    wrong = http.post(
        discovery["introspection_endpoint"], data={"token": token["access_token"]}, auth=(other.client_id, "wrong")
    )
    assert wrong.status_code in (401, 403) and "sub" not in wrong.text
    # A resource server named by the operator may introspect any token.
    settings.IDP_INTROSPECTION_CLIENTS = frozenset({other.client_id})
    seen = introspect(other, other_secret)
    assert seen["active"] is True and seen["client_id"] == owner.client_id and seen["sub"]
    assert _api(token["access_token"]).get("/api/v1/accounts").status_code == 200  # the token itself is untouched


def test_revoking_the_refresh_token_stops_its_access_token(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    rp, token = _code_tokens(browser, client, secret, http, discovery, "openid offline_access read:accounts")
    oauth = OAuth2Client.from_discovery_document(
        discovery, client_id=client.client_id, client_secret=secret, session=http
    )
    oauth.revoke_refresh_token(token["refresh_token"])
    assert _api(token["access_token"]).get("/api/v1/accounts").status_code == 401
    with pytest.raises(OAuthError):
        rp.refresh_token(discovery["token_endpoint"], refresh_token=token["refresh_token"])


def test_ending_the_session_on_security_page_stops_provider_tokens(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    from accounts import services as account_services
    from accounts.models import UserSession

    client, secret = make_oidc_client()
    _rp, token = _code_tokens(browser, client, secret, http, discovery, "openid read:accounts")
    session = UserSession.objects.get(user=user, ended_at__isnull=True)
    account_services.session_end_for_user(user=user, session_id=str(session.id))
    refused = _api(token["access_token"]).get("/api/v1/accounts")
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"


def test_expired_and_foreign_tokens_are_refused(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    _rp, token = _code_tokens(browser, client, secret, http, discovery, "openid read:accounts")
    with time_machine.travel(AccessToken.objects.get().expires + timedelta(seconds=11), tick=False):
        expired = _api(token["access_token"]).get("/api/v1/accounts")
    assert expired.status_code == 401 and expired.json()["code"] == "token_expired"
    header, payload, signature = token["access_token"].split(".")
    tampered = _api(f"{header}.{payload}.{signature[:-4]}AAAA").get("/api/v1/accounts")
    assert tampered.status_code == 401


def test_mobile_tokens_still_work_and_carry_every_customer_scope(user: User) -> None:
    tokens = issue_tokens(user)
    api = APIClient(REMOTE_ADDR="203.0.113.10")
    api.credentials(**bearer(tokens))
    assert api.get("/api/v1/accounts").status_code == 200
    assert api.get("/api/v1/payments").status_code == 200
    assert api.get("/api/v1/me").status_code == 200


def test_creating_a_payment_with_a_password_only_provider_token_needs_step_up(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    account = payment_services.account_open(owner=user, currency="EUR", name="Main", opening_balance="100.00")
    client, secret = make_oidc_client()
    _rp, token = _code_tokens(browser, client, secret, http, discovery, "openid write:payments read:payments")
    response = _api(token["access_token"]).post(
        "/api/v1/payments",
        {"from_account": str(account.id), "to_iban": "NL91ABNA0417164300", "amount": "1.00", "currency": "EUR"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k2",
    )
    assert response.status_code == 401
    assert response.json()["code"] == "insufficient_user_authentication"
    challenge = response["WWW-Authenticate"]
    assert (
        'error="insufficient_user_authentication"' in challenge and 'acr_values="urn:bank-portal:acr:mfa"' in challenge
    )
    assert _api(token["access_token"]).get("/api/v1/payments").status_code == 200


def _pem_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_key_rotation_an_old_key_keeps_verifying_and_both_are_published(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any], settings: Any
) -> None:
    from accounts import tokens as account_tokens

    old_private, old_public = _pem_pair()
    new_private, _new_public = _pem_pair()
    settings.JWT_PRIVATE_KEY = old_private
    old_kid = account_tokens.keyring().kid
    client, secret = make_oidc_client()
    _rp, token = _code_tokens(browser, client, secret, http, discovery, "openid read:accounts")

    settings.JWT_PRIVATE_KEY = new_private
    settings.JWT_PREVIOUS_PUBLIC_KEYS = old_public
    kids = [key["kid"] for key in http.get(discovery["jwks_uri"]).json()["keys"]]
    assert kids[0] == account_tokens.keyring().kid != old_kid and old_kid in kids
    assert _api(token["access_token"]).get("/api/v1/accounts").status_code == 200  # old key: still accepted
    _rp, fresh = _code_tokens(browser, client, secret, http, discovery, "openid read:accounts")
    from joserfc import jwt as jose_jwt

    assert jose_jwt.decode(fresh["access_token"], _keyset_of(http, discovery)).header["kid"] == kids[0]

    settings.JWT_PREVIOUS_PUBLIC_KEYS = ""  # the old key retired: its tokens stop
    assert _api(token["access_token"]).get("/api/v1/accounts").status_code == 401


def _keyset_of(http: requests.Session, discovery: dict[str, Any]) -> Any:
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(http.get(discovery["jwks_uri"]).json())


def test_this_wasnt_me_stops_every_provider_token_of_the_user(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    from accounts import services as account_services

    client, secret = make_oidc_client()
    rp, token = _code_tokens(browser, client, secret, http, discovery, "openid offline_access read:accounts")
    account_services.sessions_end_all(user=user, reason="not_me", actor=user)  # what risk's "this wasn't me" does
    assert _api(token["access_token"]).get("/api/v1/accounts").status_code == 401
    with pytest.raises(OAuthError):
        rp.refresh_token(discovery["token_endpoint"], refresh_token=token["refresh_token"])
    userinfo = http.get(discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code in (401, 403)
