"""Authorization code + PKCE, driven by authlib's OAuth2Session (a real OAuth client library)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import requests
import time_machine
from authlib.integrations.base_client.errors import OAuthError
from django.test import Client as DjangoClient
from joserfc import jwt
from joserfc.jwk import KeySet

from accounts.authn import ACR_PASSWORD
from accounts.models import User, UserSession
from audit.models import AuditEvent
from idp.models import AccessToken, Grant, RefreshToken
from tests.idp.conftest import RP_CALLBACK, authorize, follow_to_client, query, rp_session


def _keyset(http: requests.Session, discovery: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(http.get(discovery["jwks_uri"]).json())


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _api_status(token: str) -> int:
    from rest_framework.test import APIClient

    return APIClient().get("/api/v1/payments", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def validate_id_token(raw: str, *, keys: KeySet, issuer: str, client_id: str, nonce: str) -> dict[str, Any]:
    token = jwt.decode(raw, keys, algorithms=["RS256"])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        auth_time={"essential": True},
    )
    registry.validate(token.claims)
    assert token.header["kid"] in {k.kid for k in keys.keys}
    return dict(token.claims)


def test_discovery_names_endpoints_and_the_one_jwks(
    discovery: dict[str, Any], issuer: str, http: requests.Session
) -> None:
    assert discovery["issuer"] == issuer
    assert discovery["authorization_endpoint"] == f"{issuer}/o/authorize/"
    assert discovery["token_endpoint"] == f"{issuer}/o/token/"
    assert discovery["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["response_types_supported"] == ["code"]
    assert "implicit" not in discovery["grant_types_supported"] and "password" not in discovery["grant_types_supported"]
    assert discovery["backchannel_logout_supported"] is True
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert set(discovery["acr_values_supported"]) == {"urn:bank-portal:acr:password", "urn:bank-portal:acr:mfa"}
    assert {"openid", "email", "offline_access", "read:accounts", "read:payments", "write:payments"} <= set(
        discovery["scopes_supported"]
    )
    jwks = http.get(discovery["jwks_uri"]).json()
    assert jwks["keys"] and all(key["kid"] and key["alg"] in ("RS256", "ES256") for key in jwks["keys"])
    assert jwks["keys"][0]["alg"] == "RS256" and {"RS256", "ES256"} == {key["alg"] for key in jwks["keys"]}


def test_confidential_client_code_flow_with_pkce(
    browser: DjangoClient,
    user: User,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
    issuer: str,
) -> None:
    client, secret = make_oidc_client()
    rp = rp_session(client, secret, http)
    response, state, verifier, nonce = authorize(browser, rp, discovery)
    assert response.status_code == 302
    callback = response["Location"]
    assert callback.startswith(RP_CALLBACK)
    params = query(callback)
    assert params["state"] == state and params["iss"] == issuer  # RFC 9207

    token = rp.fetch_token(discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["refresh_token"]  # offline_access asked

    claims = validate_id_token(
        token["id_token"], keys=_keyset(http, discovery), issuer=issuer, client_id=client.client_id, nonce=nonce
    )
    assert claims["sub"] == str(user.public_id)
    assert claims["at_hash"] == _at_hash(token["access_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_PASSWORD
    live = UserSession.objects.get(user=user, ended_at__isnull=True)
    assert claims["sid"] == str(live.id)
    assert abs(claims["auth_time"] - int(live.created_at.timestamp())) <= 2
    assert claims["email"] == user.email and claims["email_verified"] is user.email_verified

    access = jwt.decode(token["access_token"], _keyset(http, discovery), algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["client_id"] == client.client_id and access.claims["sid"] == str(live.id)
    assert access.claims["iss"] == issuer and access.claims["aud"] == f"{issuer}/api/v1"
    assert set(access.claims["scope"].split()) == {"openid", "email", "offline_access", "read:payments"}
    for claim in ("iat", "exp", "jti", "acr", "auth_time"):
        assert claim in access.claims

    # Tokens are stored hashed: only checksums at rest.
    stored = AccessToken.objects.get(application=client)
    assert stored.token == "" and stored.token_checksum == hashlib.sha256(token["access_token"].encode()).hexdigest()
    assert RefreshToken.objects.get(application=client).token == ""

    types = list(AuditEvent.objects.filter(type__startswith="oauth.").values_list("type", "details__client_id"))
    assert ("oauth.authorized", client.client_id) in types and ("oauth.token_issued", client.client_id) in types

    userinfo = http.get(discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code == 200
    assert userinfo.json() == {"sub": str(user.public_id), "email": user.email, "email_verified": user.email_verified}


def test_public_client_code_flow_without_secret(
    browser: DjangoClient,
    user: User,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
    issuer: str,
) -> None:
    client, secret = make_oidc_client(name="Mobile banking", kind="public", scopes="openid read:accounts")
    assert secret == ""
    rp = rp_session(client, "", http, scope="openid read:accounts")
    response, _state, verifier, nonce = authorize(browser, rp, discovery)
    token = rp.fetch_token(
        discovery["token_endpoint"], authorization_response=response["Location"], code_verifier=verifier
    )
    claims = validate_id_token(
        token["id_token"], keys=_keyset(http, discovery), issuer=issuer, client_id=client.client_id, nonce=nonce
    )
    assert "email" not in claims  # no email scope, no email claim
    assert "refresh_token" not in token  # no offline_access, no refresh token


def test_plain_pkce_is_refused(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    rp = rp_session(client, secret, http)
    verifier = "v" * 50
    url, _state = rp.create_authorization_url(
        discovery["authorization_endpoint"], code_challenge=verifier, code_challenge_method="plain"
    )
    response = follow_to_client(browser, url)
    assert response.status_code == 302
    params = query(response["Location"])
    assert params["error"] == "invalid_request" and "S256" in params["error_description"]
    assert not Grant.objects.exists()


def test_missing_pkce_is_refused(browser: DjangoClient, make_oidc_client: Any, discovery: dict[str, Any]) -> None:
    client, _secret = make_oidc_client()
    response = browser.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": RP_CALLBACK,
            "scope": "openid",
            "state": "s",
        },
        secure=True,
    )
    assert response.status_code == 302 and query(response["Location"])["error"] == "invalid_request"


def test_wrong_redirect_uri_is_refused_without_redirecting(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    rp = rp_session(client, secret, http)
    for wrong in ("https://evil.example/cb", RP_CALLBACK + "extra", RP_CALLBACK.rstrip("/")):
        rp.redirect_uri = wrong
        response, _state, _verifier, _nonce = authorize(browser, rp, discovery)
        assert response.status_code == 400  # shown to the user, never sent to an unregistered URI
        assert not response.has_header("Location")
        assert b"This sign-in request cannot be completed" in response.content
    assert not Grant.objects.exists()


def test_code_works_once_and_only_within_60_seconds(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    rp = rp_session(client, secret, http)
    response, _state, verifier, _nonce = authorize(browser, rp, discovery)
    callback = response["Location"]
    first = rp.fetch_token(discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert _api_status(first["access_token"]) == 200
    with pytest.raises(OAuthError) as reused:
        rp.fetch_token(discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert reused.value.error == "invalid_grant"
    # Presented twice: someone else has the code, so what it was exchanged for is revoked.
    assert _api_status(first["access_token"]) == 401
    with pytest.raises(OAuthError):
        rp.refresh_token(discovery["token_endpoint"], refresh_token=first["refresh_token"])
    assert AuditEvent.objects.filter(type="oauth.code_reuse_detected", details__client_id=client.client_id).exists()

    response, _state, verifier, _nonce = authorize(browser, rp, discovery)
    with time_machine.travel(Grant.objects.get().expires, tick=False), pytest.raises(OAuthError) as expired:
        rp.fetch_token(discovery["token_endpoint"], authorization_response=response["Location"], code_verifier=verifier)
    assert expired.value.error == "invalid_grant"
    assert (Grant.objects.get().expires - Grant.objects.get().created).total_seconds() <= 60


def test_wrong_code_verifier_is_refused(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    client, secret = make_oidc_client()
    rp = rp_session(client, secret, http)
    response, _state, _verifier, _nonce = authorize(browser, rp, discovery)
    with pytest.raises(OAuthError) as refused:
        rp.fetch_token(discovery["token_endpoint"], authorization_response=response["Location"], code_verifier="x" * 50)
    assert refused.value.error == "invalid_grant"
    assert not AccessToken.objects.exists()
