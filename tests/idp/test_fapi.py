"""The FAPI 2.0 security profile (issue 18): PAR, private_key_jwt, DPoP, ES256 tokens.

The relying party is requests-oauth2client (it speaks PAR, private_key_jwt and DPoP), talking
real HTTP to the provider under pytest-django's live_server, against PostgreSQL and Redis; the
user's browser is Django's test client signing in through the real login and second factor.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
import time_machine
from django.test import Client as DjangoClient
from django.utils import timezone
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet, OctKey
from jwskate import Jwk
from requests_oauth2client import DPoPKey, OAuth2Client, PrivateKeyJwt
from requests_oauth2client.exceptions import InvalidClient, InvalidGrant
from requests_oauth2client.tokens import BearerToken

from accounts.authn import ACR_MFA
from accounts.models import User
from audit.models import AuditEvent
from idp import services
from idp.models import AccessToken, Client, Grant, RefreshToken
from tests.idp.conftest import RP_CALLBACK, follow_to_client, query

MFA = "urn:bank-portal:acr:mfa"
SCOPES = "openid offline_access read:accounts read:payments"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(live_server: Any, settings: Any) -> str:
    """The provider at live_server: issuer, discovery and every endpoint on real HTTP."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.IDP_ISSUER = ""
    return str(live_server.url)


@pytest.fixture
def discovery(server: str) -> dict[str, Any]:
    response = requests.get(f"{server}/.well-known/openid-configuration", timeout=10)
    assert response.status_code == 200
    return dict(response.json())


@pytest.fixture
def client_key() -> Jwk:
    return Jwk.generate(alg="ES256", kid="rp-key-1")


def public_jwks(*keys: Jwk) -> dict[str, Any]:
    return {"keys": [dict(key.public_jwk()) for key in keys]}


class FakeJWKSServer:
    """The relying party's JWKS URI on loopback (the provider fetches it with requests)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps(owner.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server(client_key: Jwk) -> Iterator[FakeJWKSServer]:
    fake = FakeJWKSServer(public_jwks(client_key))
    yield fake
    fake.close()


@pytest.fixture
def fapi_client(jwks_server: FakeJWKSServer) -> Client:
    client, secret = services.client_create(
        name="Open banking app",
        kind="confidential",
        grant="authorization-code",
        redirect_uris=[RP_CALLBACK],
        scopes=SCOPES,
        trusted=True,
        fapi=True,
        jwks_uri=jwks_server.url,
    )
    assert secret == ""  # private_key_jwt: no secret exists
    return client


def rp(
    discovery: dict[str, Any], client: Client, key: Jwk | None, *, dpop: bool = True, secret: str = ""
) -> OAuth2Client:
    """requests-oauth2client configured as a FAPI 2.0 relying party."""
    if key is not None:
        # FAPI 2.0: the assertion's aud is the issuer (requests-oauth2client's default is the endpoint URL).
        auth: Any = PrivateKeyJwt(client.client_id, key, alg="ES256", aud=discovery["issuer"])
    elif secret:
        auth = (client.client_id, secret)
    else:
        auth = client.client_id
    return OAuth2Client(
        token_endpoint=discovery["token_endpoint"],
        authorization_endpoint=discovery["authorization_endpoint"],
        pushed_authorization_request_endpoint=discovery["pushed_authorization_request_endpoint"],
        revocation_endpoint=discovery["revocation_endpoint"],
        introspection_endpoint=discovery["introspection_endpoint"],
        issuer=discovery["issuer"],
        authorization_response_iss_parameter_supported=True,
        auth=auth,
        redirect_uri=RP_CALLBACK,
        dpop_bound_access_tokens=dpop,
        testing=True,  # live_server speaks http
    )


@pytest.fixture
def browser_mfa(browser: DjangoClient, user: User, add_totp: Any) -> tuple[DjangoClient, pyotp.TOTP]:
    """The user's browser signed in with a password, and the authenticator app the user owns
    (acr_values=mfa makes the authorization endpoint ask for it)."""
    return browser, add_totp(user)


def _here(response: Any) -> str:
    return str(response.request["PATH_INFO"]) + "?" + str(response.request.get("QUERY_STRING", ""))


def browse_to_callback(browser: DjangoClient, url: str, totp: pyotp.TOTP | None = None) -> str:
    """The user's browser: the authorize URL, a second factor when asked, back to the client."""
    response = follow_to_client(browser, url)
    for _ in range(4):
        if response.status_code in (301, 302) and response["Location"].startswith(RP_CALLBACK):
            return str(response["Location"])
        if (
            response.status_code == 200
            and "url" in (response.context or {})
            and str(response.context["url"]).startswith(RP_CALLBACK)
        ):
            return str(response.context["url"])
        here = _here(response)
        assert "/reauth" in here and totp is not None, (response.status_code, here, response.content[:300])
        params = parse_qs(urlsplit(here).query)
        posted = browser.post(
            here,
            {"kind": "totp", "code": totp.now(), "next": params["next"][0], "level": params.get("level", ["mfa"])[0]},
            secure=True,
        )
        assert posted.status_code == 302, posted.content[:300]
        response = follow_to_client(browser, posted["Location"])
    raise AssertionError("the browser never reached the client")


def keys_of(discovery: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())


# --- The whole flow ------------------------------------------------------------------------------


def test_fapi_client_whole_flow_par_mfa_private_key_jwt_dpop_resource(
    server: str,
    discovery: dict[str, Any],
    fapi_client: Client,
    client_key: Jwk,
    browser_mfa: tuple[DjangoClient, pyotp.TOTP],
    user: User,
    jwks_server: FakeJWKSServer,
) -> None:
    browser, totp = browser_mfa
    assert discovery["pushed_authorization_request_endpoint"] == f"{server}/o/par/"
    assert "private_key_jwt" in discovery["token_endpoint_auth_methods_supported"]
    assert set(discovery["dpop_signing_alg_values_supported"]) == {"ES256", "PS256"}
    assert "ES256" in discovery["id_token_signing_alg_values_supported"]
    oauth = rp(discovery, fapi_client, client_key)

    request = oauth.authorization_request(scope=SCOPES, acr_values=MFA, dpop=True)
    pushed = oauth.pushed_authorization_request(request)
    assert pushed.request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    assert pushed.expires_at is not None and 0 < (pushed.expires_at - timezone.now()).total_seconds() < 60
    assert request.dpop_key is not None
    dpop_jkt = request.dpop_key.dpop_jkt
    assert set(parse_qs(urlsplit(pushed.uri).query)) == {"client_id", "request_uri"}  # nothing else in the URL

    callback = browse_to_callback(browser, pushed.uri, totp)
    assert query(callback)["iss"] == discovery["issuer"]
    grant = Grant.objects.get(application=fapi_client)
    assert (grant.expires - grant.created).total_seconds() <= 60  # codes <= 60 s
    assert grant.dpop_jkt == dpop_jkt  # bound at PAR (the proof and dpop_jkt)

    response = request.validate_callback(callback)
    token = oauth.authorization_code(response, validate=False)
    assert token.token_type.lower() == "dpop"
    claims = jose_jwt.decode(token.access_token, keys_of(discovery), algorithms=["ES256"]).claims
    header = jose_jwt.decode(token.access_token, keys_of(discovery), algorithms=["ES256"]).header
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
    assert claims["cnf"] == {"jkt": dpop_jkt}
    assert claims["acr"] == ACR_MFA
    id_token = jose_jwt.decode(str(token.id_token), keys_of(discovery), algorithms=["ES256"])
    assert id_token.claims["aud"] == fapi_client.client_id and id_token.claims["acr"] == ACR_MFA
    assert jwks_server.hits >= 1  # the client's keys came from its JWKS URI

    # The resource call with a proof (requests-oauth2client signs one per request, with ath).
    api = requests.get(f"{server}/api/v1/accounts", auth=token, timeout=10)
    assert api.status_code == 200, api.content[:300]
    # Introspection and revocation authenticate the client with private_key_jwt too.
    introspected = oauth.introspect_token(token.access_token)
    assert introspected["active"] is True and introspected["cnf"] == {"jkt": dpop_jkt}
    assert introspected["token_type"] == "DPoP"
    assert oauth.revoke_access_token(token.access_token) is True
    assert requests.get(f"{server}/api/v1/accounts", auth=token, timeout=10).status_code == 401
    assert AuditEvent.objects.filter(type="oauth.token_issued", details__client_id=fapi_client.client_id).exists()


# --- Stolen tokens -------------------------------------------------------------------------------


def _fapi_tokens(
    discovery: dict[str, Any], client: Client, key: Jwk, browser: DjangoClient, totp: pyotp.TOTP | None
) -> tuple[OAuth2Client, BearerToken]:
    oauth = rp(discovery, client, key)
    request = oauth.authorization_request(scope=SCOPES, dpop=True)
    pushed = oauth.pushed_authorization_request(request)
    callback = browse_to_callback(browser, pushed.uri, totp)
    return oauth, oauth.authorization_code(request.validate_callback(callback), validate=False)


def test_a_stolen_dpop_bound_access_token_is_refused_without_the_key(
    server: str,
    discovery: dict[str, Any],
    fapi_client: Client,
    client_key: Jwk,
    browser_mfa: tuple[DjangoClient, pyotp.TOTP],
) -> None:
    browser, totp = browser_mfa
    _oauth, token = _fapi_tokens(discovery, fapi_client, client_key, browser, totp)
    url = f"{server}/api/v1/accounts"
    as_bearer = requests.get(url, headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10)
    assert as_bearer.status_code == 401
    assert as_bearer.headers["WWW-Authenticate"].startswith("DPoP ")
    assert 'error="invalid_token"' in as_bearer.headers["WWW-Authenticate"]
    no_proof = requests.get(url, headers={"Authorization": f"DPoP {token.access_token}"}, timeout=10)
    assert no_proof.status_code == 401 and 'algs="ES256 PS256"' in no_proof.headers["WWW-Authenticate"]
    # The thief's own key: a valid proof, but not of the key the token is bound to.
    thief = DPoPKey.generate(alg="ES256")
    ath = __import__("core.dpop", fromlist=["access_token_hash"]).access_token_hash(token.access_token)
    other_key = requests.get(
        url,
        headers={"Authorization": f"DPoP {token.access_token}", "DPoP": str(thief.proof(htm="GET", htu=url, ath=ath))},
        timeout=10,
    )
    assert other_key.status_code == 401 and other_key.json()["code"] == "invalid_dpop_proof"
    assert requests.get(url, auth=token, timeout=10).status_code == 200  # the holder of the key still can


def test_a_stolen_refresh_token_of_a_public_fapi_client_is_refused_without_the_key(
    server: str, discovery: dict[str, Any], browser_mfa: tuple[DjangoClient, pyotp.TOTP]
) -> None:
    browser, totp = browser_mfa
    public, _ = services.client_create(
        name="Banking app",
        kind="public",
        grant="authorization-code",
        redirect_uris=[RP_CALLBACK],
        scopes=SCOPES,
        trusted=True,
        fapi=True,
    )
    oauth, token = _fapi_tokens(discovery, public, None, browser, totp)  # type: ignore[arg-type]
    assert token.refresh_token
    stored = RefreshToken.objects.get(application=public, revoked__isnull=True)
    assert stored.dpop_jkt and stored.dpop_jkt == token.dpop_key.dpop_jkt  # type: ignore[attr-defined]
    thief = rp(discovery, public, None)
    with pytest.raises(InvalidGrant):
        thief.refresh_token(str(token.refresh_token), dpop=True)  # the thief's own DPoP key
    with pytest.raises(Exception) as refused:
        thief.refresh_token(str(token.refresh_token), dpop=False)  # no proof at all
    assert "dpop" in str(refused.value).lower() or isinstance(refused.value, InvalidGrant)
    refreshed = oauth.refresh_token(token)  # the key's holder: works, and (FAPI) is not rotated
    assert refreshed.refresh_token == token.refresh_token
    assert requests.get(f"{server}/api/v1/accounts", auth=refreshed, timeout=10).status_code == 200
    # The access token it replaced stops at once (its jti is listed).
    assert requests.get(f"{server}/api/v1/accounts", auth=token, timeout=10).status_code == 401


def test_a_confidential_fapi_client_refresh_is_not_rotated_and_needs_the_client_key(
    server: str,
    discovery: dict[str, Any],
    fapi_client: Client,
    client_key: Jwk,
    browser_mfa: tuple[DjangoClient, pyotp.TOTP],
) -> None:
    browser, totp = browser_mfa
    oauth, token = _fapi_tokens(discovery, fapi_client, client_key, browser, totp)
    thief = rp(discovery, fapi_client, Jwk.generate(alg="ES256", kid="rp-key-1"))  # not the registered key
    with pytest.raises(InvalidClient):
        thief.refresh_token(str(token.refresh_token), dpop=True)
    refreshed = oauth.refresh_token(token)
    assert refreshed.refresh_token == token.refresh_token  # not rotated: the binding protects it
    assert RefreshToken.objects.filter(application=fapi_client).count() == 1
    assert AccessToken.objects.filter(application=fapi_client).count() == 1


# --- Replays -------------------------------------------------------------------------------------


def test_a_replayed_dpop_proof_is_refused_at_the_resource_and_token_endpoint(
    server: str,
    discovery: dict[str, Any],
    fapi_client: Client,
    client_key: Jwk,
    browser_mfa: tuple[DjangoClient, pyotp.TOTP],
) -> None:
    browser, totp = browser_mfa
    _oauth, token = _fapi_tokens(discovery, fapi_client, client_key, browser, totp)
    url = f"{server}/api/v1/accounts"
    key = token.dpop_key  # type: ignore[attr-defined]
    from core.dpop import access_token_hash

    proof = str(key.proof(htm="GET", htu=url, ath=access_token_hash(token.access_token)))
    headers = {"Authorization": f"DPoP {token.access_token}", "DPoP": proof}
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    again = requests.get(url, headers=headers, timeout=10)
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    assert AuditEvent.objects.filter(type="token.dpop_proof_replayed", details__endpoint="resource").exists()
    # A proof for another URL or method is refused too.
    wrong_url = str(key.proof(htm="GET", htu=f"{server}/api/v1/payments", ath=access_token_hash(token.access_token)))
    assert requests.get(url, headers={**headers, "DPoP": wrong_url}, timeout=10).status_code == 401
    # At the token endpoint: a refresh whose proof was already used.
    token_proof = str(key.proof(htm="POST", htu=discovery["token_endpoint"]))
    body = {"grant_type": "refresh_token", "refresh_token": str(token.refresh_token)}
    auth = PrivateKeyJwt(fapi_client.client_id, client_key, alg="ES256", aud=discovery["issuer"])
    first = requests.post(discovery["token_endpoint"], data=body, headers={"DPoP": token_proof}, auth=auth, timeout=10)
    assert first.status_code == 200, first.content
    second = requests.post(discovery["token_endpoint"], data=body, headers={"DPoP": token_proof}, auth=auth, timeout=10)
    assert second.status_code == 400 and second.json()["error"] == "invalid_dpop_proof"


def test_a_replayed_client_assertion_is_refused(
    server: str, discovery: dict[str, Any], fapi_client: Client, client_key: Jwk
) -> None:
    auth = PrivateKeyJwt(fapi_client.client_id, client_key, alg="ES256", aud=discovery["issuer"])
    assertion = auth.client_assertion(discovery["issuer"])
    data = {
        "client_id": fapi_client.client_id,
        "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "response_type": "code",
        "redirect_uri": RP_CALLBACK,
        "scope": "openid",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    first = requests.post(discovery["pushed_authorization_request_endpoint"], data=data, timeout=10)
    assert first.status_code == 201, first.content
    replay = requests.post(discovery["pushed_authorization_request_endpoint"], data=data, timeout=10)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert AuditEvent.objects.filter(
        type="oauth.client_assertion_replayed", details__client_id=fapi_client.client_id
    ).exists()
    # FAPI 2.0: aud must be the issuer, not the endpoint's URL.
    endpoint_aud = PrivateKeyJwt(
        fapi_client.client_id, client_key, alg="ES256", aud=discovery["pushed_authorization_request_endpoint"]
    )
    wrong_aud = requests.post(
        discovery["pushed_authorization_request_endpoint"],
        data={k: v for k, v in data.items() if not k.startswith("client_assertion")},
        auth=endpoint_aud,
        timeout=10,
    )
    assert wrong_aud.status_code == 401
    # Never alg none or HS256 (an HMAC keyed with something public, e.g. the client's JWK).
    claims = {
        "iss": fapi_client.client_id,
        "sub": fapi_client.client_id,
        "aud": discovery["issuer"],
        "exp": int(timezone.now().timestamp()) + 60,
        "jti": "fresh-jti-for-this-test",
    }
    payload = jose_jwt.encode({"alg": "ES256"}, claims, ECKey.import_key(dict(client_key))).split(".")[1]
    unsigned = "eyJhbGciOiJub25lIn0." + payload + "."
    hs256 = jose_jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(json.dumps(public_jwks(client_key))))
    for bad in (unsigned, hs256):
        refused = requests.post(
            discovery["pushed_authorization_request_endpoint"], data={**data, "client_assertion": bad}, timeout=10
        )
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    # Nor a secret: the client has none, and secret methods are refused for a private_key_jwt client.
    basic = requests.post(
        discovery["pushed_authorization_request_endpoint"],
        data={k: v for k, v in data.items() if not k.startswith("client_assertion")},
        auth=(fapi_client.client_id, "bps_guess"),
        timeout=10,
    )
    assert basic.status_code == 401


# --- PAR -----------------------------------------------------------------------------------------


def test_a_request_uri_works_once_and_not_late(
    server: str,
    discovery: dict[str, Any],
    fapi_client: Client,
    client_key: Jwk,
    browser_mfa: tuple[DjangoClient, pyotp.TOTP],
) -> None:
    browser, totp = browser_mfa
    oauth = rp(discovery, fapi_client, client_key)
    request = oauth.authorization_request(scope=SCOPES, dpop=True)
    pushed = oauth.pushed_authorization_request(request)
    callback = browse_to_callback(browser, pushed.uri, totp)
    assert "code" in query(callback)
    used_again = follow_to_client(browser, pushed.uri)
    assert used_again.status_code == 400 and b"already used or has expired" in used_again.content
    assert AuditEvent.objects.filter(type="oauth.authorization_refused", reason="invalid_request_uri").exists()

    late = oauth.pushed_authorization_request(oauth.authorization_request(scope=SCOPES, dpop=True))
    with time_machine.travel(timezone.now() + timedelta(seconds=51), tick=False):
        refused = follow_to_client(browser, late.uri)
        assert refused.status_code == 400 and b"already used or has expired" in refused.content
    # Refused for good: taking it consumed it.
    assert follow_to_client(browser, late.uri).status_code == 400


def test_a_fapi_client_must_use_par_and_its_redirect_uri_travels_inside(
    server: str, discovery: dict[str, Any], fapi_client: Client, client_key: Jwk, browser_mfa: Any
) -> None:
    browser, _totp = browser_mfa
    plain = (
        f"{discovery['authorization_endpoint']}?response_type=code&client_id={fapi_client.client_id}"
        f"&redirect_uri={RP_CALLBACK}&scope=openid&code_challenge_method=S256"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    refused = follow_to_client(browser, plain)
    assert refused.status_code == 400 and b"(PAR)" in refused.content
    oauth = rp(discovery, fapi_client, client_key)
    with pytest.raises(Exception):  # an unregistered redirect_uri is refused at the push
        oauth.pushed_authorization_request(
            oauth.authorization_request(scope="openid", redirect_uri="https://evil.example/cb", dpop=True)
        )
    no_pkce = requests.post(
        discovery["pushed_authorization_request_endpoint"],
        data={"response_type": "code", "redirect_uri": RP_CALLBACK, "scope": "openid"},
        auth=PrivateKeyJwt(fapi_client.client_id, client_key, alg="ES256", aud=discovery["issuer"]),
        timeout=10,
    )
    assert no_pkce.status_code == 400 and no_pkce.json()["error"] == "invalid_request"
    assert "challenge" in no_pkce.json()["error_description"].lower()


def test_a_fapi_client_without_dpop_gets_no_token(
    server: str, discovery: dict[str, Any], fapi_client: Client, client_key: Jwk, browser_mfa: Any
) -> None:
    browser, totp = browser_mfa
    oauth = rp(discovery, fapi_client, client_key, dpop=False)
    request = oauth.authorization_request(scope=SCOPES)
    callback = browse_to_callback(browser, oauth.pushed_authorization_request(request).uri, totp)
    with pytest.raises(Exception) as refused:
        oauth.authorization_code(request.validate_callback(callback), validate=False, dpop=False)
    assert "dpop" in str(refused.value).lower()
    assert not AccessToken.objects.filter(application=fapi_client).exists()


def test_server_nonce_is_asked_for_and_followed(
    server: str, discovery: dict[str, Any], fapi_client: Client, client_key: Jwk, browser_mfa: Any, settings: Any
) -> None:
    browser, totp = browser_mfa
    settings.DPOP_REQUIRE_NONCE = True
    oauth = rp(discovery, fapi_client, client_key)
    request = oauth.authorization_request(scope=SCOPES, dpop=True)
    pushed = oauth.pushed_authorization_request(request)  # use_dpop_nonce, then again with the nonce
    callback = browse_to_callback(browser, pushed.uri, totp)
    token = oauth.authorization_code(request.validate_callback(callback), validate=False)
    url = f"{server}/api/v1/accounts"
    from core.dpop import access_token_hash

    bare = str(token.dpop_key.proof(htm="GET", htu=url, ath=access_token_hash(token.access_token)))  # type: ignore[attr-defined]
    asked = requests.get(url, headers={"Authorization": f"DPoP {token.access_token}", "DPoP": bare}, timeout=10)
    assert asked.status_code == 401 and 'error="use_dpop_nonce"' in asked.headers["WWW-Authenticate"]
    assert asked.headers["DPoP-Nonce"]
    assert requests.get(url, auth=token, timeout=10).status_code == 200  # the library follows the nonce


def test_a_pushed_request_survives_the_login_and_the_consent_page(
    server: str,
    discovery: dict[str, Any],
    client: DjangoClient,
    user: User,
    password: str,
    jwks_server: Any,
    client_key: Jwk,
) -> None:
    """An anonymous user signs in, then a third-party FAPI client's consent page: the request's
    parameters come from Redis all the way (the login's `next` and the form carry only the handle)."""
    third_party, _ = services.client_create(
        name="Budget aggregator",
        kind="confidential",
        grant="authorization-code",
        redirect_uris=[RP_CALLBACK],
        scopes=SCOPES,
        trusted=False,
        fapi=True,
        jwks_uri=jwks_server.url,
    )
    oauth = rp(discovery, third_party, client_key)
    request = oauth.authorization_request(scope="openid read:accounts", dpop=True)
    pushed = oauth.pushed_authorization_request(request)
    page = follow_to_client(client, pushed.uri)
    login_url = _here(page)
    assert login_url.startswith("/accounts/login/")
    next_url = parse_qs(urlsplit(login_url).query)["next"][0]
    assert set(parse_qs(urlsplit(next_url).query)) == {"client_id", "par"}  # no parameter in the browser
    signed_in = client.post(login_url, {"email": user.email, "password": password, "next": next_url})
    assert signed_in.status_code == 302
    consent = follow_to_client(client, signed_in["Location"])
    if consent.status_code == 200 and consent.request["PATH_INFO"] == "/security/mfa/welcome/":
        consent = follow_to_client(client, client.post("/security/mfa/welcome/", {"next": next_url})["Location"])
    assert consent.status_code == 200 and b"Allow Budget aggregator" in consent.content
    form = {k: v for k, v in consent.context["form"].initial.items() if v is not None}
    handle = consent.context["par_handle"]
    tampered = client.post(
        "/o/authorize/", {**form, "par": handle, "allow": "Authorize", "state": "forged"}, secure=True
    )
    assert tampered.status_code == 400  # the hidden fields must be the pushed ones
    allowed = client.post("/o/authorize/", {**form, "par": handle, "allow": "Authorize"}, secure=True)
    assert allowed.status_code == 200, allowed.content[:300]
    callback = str(allowed.context["url"])
    token = oauth.authorization_code(request.validate_callback(callback), validate=False)
    assert token.token_type.lower() == "dpop"
    again = client.post("/o/authorize/", {**form, "par": handle, "allow": "Authorize"}, secure=True)
    assert again.status_code == 400  # the interaction ended with the code


# --- Keys and registration -----------------------------------------------------------------------


def test_the_client_jwks_uri_is_cached_and_refetched_for_a_new_kid(
    server: str, discovery: dict[str, Any], fapi_client: Client, client_key: Jwk, jwks_server: FakeJWKSServer
) -> None:
    def push(key: Jwk) -> int:
        return requests.post(
            discovery["pushed_authorization_request_endpoint"],
            data={
                "response_type": "code",
                "redirect_uri": RP_CALLBACK,
                "scope": "openid",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            },
            auth=PrivateKeyJwt(fapi_client.client_id, key, alg="ES256", aud=discovery["issuer"]),
            timeout=10,
        ).status_code

    assert push(client_key) == 201 and push(client_key) == 201
    assert jwks_server.hits == 1  # cached
    rotated = Jwk.generate(alg="ES256", kid="rp-key-2")
    jwks_server.jwks = public_jwks(client_key, rotated)
    assert push(rotated) == 201  # an unknown kid: fetched again
    assert jwks_server.hits == 2


def test_create_oauth_client_command_registers_a_fapi_client(tmp_path: Any, client_key: Jwk) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(public_jwks(client_key)))
    out = StringIO()
    call_command(
        "create_oauth_client",
        "--name=Open banking",
        "--kind=confidential",
        "--grant=authorization-code",
        f"--redirect-uri={RP_CALLBACK}",
        "--scopes=openid read:accounts",
        "--fapi",
        f"--jwks-file={jwks_file}",
        stdout=out,
    )
    assert "client_secret=" not in out.getvalue()
    client = Client.objects.get(name="Open banking")
    assert client.fapi and client.par_required and client.uses_private_key_jwt and client.jwks
    with pytest.raises(CommandError, match="private_key_jwt"):
        call_command(
            "create_oauth_client",
            "--name=No keys",
            "--kind=confidential",
            "--grant=authorization-code",
            f"--redirect-uri={RP_CALLBACK}",
            "--fapi",
            stdout=StringIO(),
        )
    private = {"keys": [dict(client_key)]}
    jwks_file.write_text(json.dumps(private))
    with pytest.raises(CommandError, match="public keys only"):
        call_command(
            "create_oauth_client",
            "--name=Leaky",
            "--kind=confidential",
            "--grant=authorization-code",
            f"--redirect-uri={RP_CALLBACK}",
            f"--jwks-file={jwks_file}",
            "--require-par",
            stdout=StringIO(),
        )


def test_the_admin_registers_a_fapi_client_with_its_keys_and_no_secret(client_key: Jwk, settings: Any) -> None:
    from django.contrib import admin
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.test import RequestFactory

    from idp.admin import ClientAdmin

    staff = User.objects.create_superuser("root@example.com", "a long staff passphrase")
    request = RequestFactory().post("/admin/idp/client/add/")
    request.user = staff
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    model_admin = ClientAdmin(Client, admin.site)
    form_class = model_admin.get_form(request)
    data = {
        "name": "Open banking app",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "authorization_grant_type": Client.GRANT_AUTHORIZATION_CODE,
        "redirect_uris": RP_CALLBACK,
        "post_logout_redirect_uris": "",
        "allowed_scopes": "openid read:accounts",
        "fapi": "on",
        "jwks": json.dumps(public_jwks(client_key)),
        "is_active": "on",
    }
    without_method = form_class(data=data)
    assert not without_method.is_valid()
    assert "private_key_jwt" in str(without_method.errors["token_endpoint_auth_method"])
    leaked = form_class(
        data={**data, "token_endpoint_auth_method": "private_key_jwt", "jwks": json.dumps({"keys": [dict(client_key)]})}
    )
    assert not leaked.is_valid() and "public keys only" in str(leaked.errors["jwks"])
    form = form_class(data={**data, "token_endpoint_auth_method": "private_key_jwt"})
    assert form.is_valid(), form.errors
    obj = form.save(commit=False)
    model_admin.save_model(request, obj, form=form, change=False)
    assert [str(m) for m in request._messages] == []  # type: ignore[attr-defined]  # no secret to show
    obj.refresh_from_db()
    assert obj.fapi and obj.par_required and obj.uses_private_key_jwt and obj.client_secret == ""
    event = AuditEvent.objects.get(type="oauth.client_created", details__client_id=obj.client_id)
    assert event.details["fapi"] is True and event.details["auth_method"] == "private_key_jwt"
    # Without an ES256 key (production without JWT_EC_PRIVATE_KEY) a FAPI client cannot be saved.
    settings.JWT_KEY_FALLBACK = "refuse"
    refused = form_class(data={**data, "name": "Another", "token_endpoint_auth_method": "private_key_jwt"})
    assert not refused.is_valid() and "JWT_EC_PRIVATE_KEY" in str(refused.errors["fapi"])


def test_a_non_fapi_client_keeps_bearer_tokens_and_rs256(
    server: str, discovery: dict[str, Any], browser_mfa: Any, user: User
) -> None:
    browser, totp = browser_mfa
    plain, secret = services.client_create(
        name="Mortgage app",
        kind="confidential",
        grant="authorization-code",
        redirect_uris=[RP_CALLBACK],
        scopes=SCOPES,
        trusted=True,
    )
    oauth = rp(discovery, plain, None, dpop=False, secret=secret)
    request = oauth.authorization_request(scope=SCOPES)
    callback = browse_to_callback(browser, request.uri, totp)  # no PAR needed
    token = oauth.authorization_code(request.validate_callback(callback), validate=False)
    assert token.token_type.lower() == "bearer"
    header = jose_jwt.decode(token.access_token, keys_of(discovery), algorithms=["RS256"]).header
    assert header["alg"] == "RS256"
    assert requests.get(f"{server}/api/v1/accounts", auth=token, timeout=10).status_code == 200
    refreshed = oauth.refresh_token(token)
    assert refreshed.refresh_token != token.refresh_token  # rotated as before
    # A bearer token sent with the DPoP scheme is refused.
    wrong = requests.get(
        f"{server}/api/v1/accounts", headers={"Authorization": f"DPoP {refreshed.access_token}"}, timeout=10
    )
    assert wrong.status_code == 401
    # A public non-FAPI client may still use PAR (optional) and DPoP (optional).
    public, _ = services.client_create(
        name="Budget app",
        kind="public",
        grant="authorization-code",
        redirect_uris=[RP_CALLBACK],
        scopes=SCOPES,
        trusted=True,
    )
    app = rp(discovery, public, None)
    request = app.authorization_request(scope=SCOPES, dpop=True)
    callback = browse_to_callback(browser, app.pushed_authorization_request(request).uri, totp)
    bound = app.authorization_code(request.validate_callback(callback), validate=False)
    assert bound.token_type.lower() == "dpop"
    assert requests.get(f"{server}/api/v1/accounts", auth=bound, timeout=10).status_code == 200


def test_a_ps256_client_assertion_with_an_inline_jwks_is_accepted(server: str, discovery: dict[str, Any]) -> None:
    rsa = Jwk.generate(alg="PS256", kid="rsa-1", key_size=2048)
    client, _ = services.client_create(
        name="PS256 app",
        kind="confidential",
        grant="authorization-code",
        redirect_uris=[RP_CALLBACK],
        scopes="openid",
        fapi=True,
        jwks=public_jwks(rsa),
    )
    pushed = requests.post(
        discovery["pushed_authorization_request_endpoint"],
        data={
            "response_type": "code",
            "redirect_uri": RP_CALLBACK,
            "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
        auth=PrivateKeyJwt(client.client_id, rsa, alg="PS256", aud=discovery["issuer"]),
        headers={
            "DPoP": str(
                DPoPKey.generate(alg="PS256").proof(htm="POST", htu=discovery["pushed_authorization_request_endpoint"])
            )
        },
        timeout=10,
    )
    assert pushed.status_code == 201, pushed.content
    # RS256 is not among the allowed algorithms, even with a registered RSA key.
    rs256 = requests.post(
        discovery["pushed_authorization_request_endpoint"],
        data={"response_type": "code", "redirect_uri": RP_CALLBACK, "scope": "openid"},
        auth=PrivateKeyJwt(client.client_id, Jwk({**dict(rsa), "alg": "RS256"}), alg="RS256", aud=discovery["issuer"]),
        timeout=10,
    )
    assert rs256.status_code == 401
