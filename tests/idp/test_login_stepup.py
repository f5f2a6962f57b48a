"""The authorization endpoint and the portal's login: unauthenticated users, prompt, max_age,
acr_values (RFC 9470 levels), consent, and the ID token's auth_time/amr/acr."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import requests
import time_machine
from django.test import Client as DjangoClient
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet

from accounts.authn import ACR_MFA, ACR_PASSWORD
from accounts.models import User
from audit.models import AuditEvent
from idp.models import Consent, Grant
from tests.idp.conftest import RP_CALLBACK, authorize, follow_to_client, query, rp_session

MFA = "urn:bank-portal:acr:mfa"


def _id_token(
    rp: Any, callback: str, verifier: str, discovery: dict[str, Any], http: requests.Session
) -> dict[str, Any]:
    token = rp.fetch_token(discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    keys = KeySet.import_key_set(http.get(discovery["jwks_uri"]).json())
    return dict(jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims)


def _here(response: Any) -> str:
    """The portal page a browser ended on (path and query)."""
    return str(response.request["PATH_INFO"]) + "?" + str(response.request.get("QUERY_STRING", ""))


def _reauth(browser: DjangoClient, location: str, data: dict[str, str]) -> Any:
    """Completes the portal's re-authentication page at `location`, returning where it sends us."""
    params = parse_qs(urlsplit(location).query)
    response = browser.post(
        urlsplit(location).path + "?" + urlsplit(location).query,
        {**data, "next": params["next"][0], **({"level": params["level"][0]} if "level" in params else {})},
        secure=True,
    )
    assert response.status_code == 302, response.content[:400]
    return response["Location"]


def test_an_anonymous_user_is_sent_to_the_portal_login_then_back(
    client: DjangoClient,
    user: User,
    password: str,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
) -> None:
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    response, _state, verifier, nonce = authorize(client, rp, discovery)
    assert response.status_code == 200 and b"password" in response.content.lower()  # the login page
    login_url = response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"]
    assert login_url.startswith("/accounts/login/")
    next_url = parse_qs(urlsplit(login_url).query)["next"][0]
    assert next_url.startswith("/o/authorize/") and "prompt" not in next_url
    signed_in = client.post(login_url, {"email": user.email, "password": password, "next": next_url})
    assert signed_in.status_code == 302
    back = follow_to_client(client, signed_in["Location"])
    if back.status_code == 200 and back.request["PATH_INFO"] == "/security/mfa/welcome/":
        # The invitation to add a second factor keeps the authorize URL; "Not now" goes on.
        dismissed = client.post("/security/mfa/welcome/", {"next": next_url})
        back = follow_to_client(client, dismissed["Location"])
    assert back["Location"].startswith(RP_CALLBACK)
    claims = _id_token(rp, back["Location"], verifier, discovery, http)
    assert claims["nonce"] == nonce and claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]


def test_prompt_none_without_a_session_answers_login_required_without_a_page(
    client: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any], issuer: str
) -> None:
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    response, state, _verifier, _nonce = authorize(client, rp, discovery, prompt="none")
    assert response.status_code == 302 and response["Location"].startswith(RP_CALLBACK)
    params = query(response["Location"])
    assert params["error"] == "login_required" and params["state"] == state and params["iss"] == issuer
    assert not Grant.objects.exists()


def test_prompt_none_with_a_session_signs_in_silently(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    response, _state, _verifier, _nonce = authorize(browser, rp, discovery, prompt="none")
    assert "code" in query(response["Location"])


def test_prompt_none_for_a_third_party_without_consent_answers_consent_required(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    oidc_client, secret = make_oidc_client(name="Reporting tool", trusted=False)
    rp = rp_session(oidc_client, secret, http)
    response, _state, _verifier, _nonce = authorize(browser, rp, discovery, prompt="none")
    assert query(response["Location"])["error"] == "consent_required"


def test_prompt_login_re_authenticates_once_even_with_a_live_session(
    browser: DjangoClient,
    user: User,
    password: str,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
) -> None:
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        first, _state, verifier, _nonce = authorize(browser, rp, discovery)
        first_claims = _id_token(rp, first["Location"], verifier, discovery, http)
        clock.shift(120)
        response, _state, verifier, _nonce = authorize(browser, rp, discovery, prompt="login")
        assert response.status_code == 200 and "/reauth" in _here(response)  # the re-authentication page
        clock.shift(5)
        back = _reauth(browser, _here(response), {"kind": "password", "password": password})
        final = follow_to_client(browser, back)
        assert final["Location"].startswith(RP_CALLBACK)  # no loop back to the re-authentication page
        claims = _id_token(rp, final["Location"], verifier, discovery, http)
    assert claims["auth_time"] > first_claims["auth_time"]
    assert claims["sid"] == first_claims["sid"]


def test_max_age_asks_for_re_authentication_when_the_last_one_is_older(
    browser: DjangoClient, password: str, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        fresh, _state, _verifier, _nonce = authorize(browser, rp, discovery, max_age="600")
        assert fresh["Location"].startswith(RP_CALLBACK)  # signed in moments ago: fine
        clock.shift(900)
        silent, _state, _verifier, _nonce = authorize(browser, rp, discovery, max_age="600", prompt="none")
        assert query(silent["Location"])["error"] == "login_required"
        stale, _state, verifier, _nonce = authorize(browser, rp, discovery, max_age="600")
        assert "/reauth" in _here(stale)
        back = _reauth(browser, _here(stale), {"kind": "password", "password": password})
        final = follow_to_client(browser, back)
        claims = _id_token(rp, final["Location"], verifier, discovery, http)
        now = int(timezone.now().timestamp())
    assert now - claims["auth_time"] <= 600


def test_acr_values_mfa_steps_up_a_password_session_with_a_second_factor(
    browser: DjangoClient,
    user: User,
    add_totp: Any,
    make_oidc_client: Any,
    http: requests.Session,
    discovery: dict[str, Any],
) -> None:
    totp: pyotp.TOTP = add_totp(user)
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    silent, _state, _verifier, _nonce = authorize(browser, rp, discovery, acr_values=MFA, prompt="none")
    assert query(silent["Location"])["error"] == "interaction_required"
    response, _state, verifier, _nonce = authorize(browser, rp, discovery, acr_values=MFA)
    assert "/reauth" in _here(response) and "level=mfa" in _here(response)
    back = _reauth(browser, _here(response), {"kind": "totp", "code": totp.now()})
    final = follow_to_client(browser, back)
    assert final["Location"].startswith(RP_CALLBACK)
    claims = _id_token(rp, final["Location"], verifier, discovery, http)
    assert claims["acr"] == ACR_MFA and "otp" in claims["amr"] and "pwd" in claims["amr"]
    # Now at mfa: a second request for mfa needs no step-up.
    again, _state, _verifier, _nonce = authorize(browser, rp, discovery, acr_values=MFA, prompt="none")
    assert "code" in query(again["Location"])


def test_third_party_client_shows_consent_in_plain_words_and_remembers_it(
    browser: DjangoClient, user: User, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    oidc_client, secret = make_oidc_client(name="Reporting tool", trusted=False, scopes="openid email read:payments")
    rp = rp_session(oidc_client, secret, http, scope="openid email read:payments")
    page, _state, verifier, _nonce = authorize(browser, rp, discovery)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Allow Reporting tool" in text and "See your payments" in text and "See your email address" in text
    assert "<script" not in text.split("</main>")[0].split("<main")[-1]  # no inline script in the page body
    form = {field: value for field, value in page.context["form"].initial.items() if value is not None}
    denied = browser.post("/o/authorize/", {**form}, secure=True)
    assert query(denied.context["url"])["error"] == "access_denied"
    assert AuditEvent.objects.filter(type="oauth.consent_denied", details__client_id=oidc_client.client_id).exists()

    page, _state, verifier, _nonce = authorize(browser, rp, discovery)
    form = {field: value for field, value in page.context["form"].initial.items() if value is not None}
    allowed = browser.post("/o/authorize/", {**form, "allow": "Authorize"}, secure=True)
    # After a form, a page that navigates to the client (CSP form-action would stop a 302 there).
    assert allowed.status_code == 200
    back_url = allowed.context["url"]
    page_text = allowed.content.decode()
    assert f'<meta http-equiv="refresh" content="0;url={back_url.replace("&", "&amp;")}">' in page_text
    assert "<script>" not in page_text and "code" in query(back_url)
    claims = _id_token(rp, back_url, verifier, discovery, http)
    assert claims["email"] == user.email  # the scopes the user allowed
    assert Consent.objects.get(user=user, client=oidc_client).scope.split() == ["email", "openid", "read:payments"]
    assert AuditEvent.objects.filter(type="oauth.consent_given", details__client_id=oidc_client.client_id).exists()
    # Next time: no page.
    again, _state, _verifier, _nonce = authorize(browser, rp, discovery)
    assert again.status_code == 302 and "code" in query(again["Location"])


def test_trusted_first_party_client_skips_consent(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    oidc_client, secret = make_oidc_client(trusted=True)
    rp = rp_session(oidc_client, secret, http)
    response, _state, _verifier, _nonce = authorize(browser, rp, discovery)
    assert response.status_code == 302 and "code" in query(response["Location"])
    assert not AuditEvent.objects.filter(type="oauth.consent_given").exists()


def test_after_a_portal_form_the_client_is_reached_by_a_page_not_a_redirect(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    url, _state = rp.create_authorization_url(discovery["authorization_endpoint"], code_verifier="v" * 50)
    path = urlsplit(url).path + "?" + urlsplit(url).query
    from_form = browser.get(path, secure=True, headers={"Sec-Fetch-Site": "same-origin"})
    assert from_form.status_code == 200 and from_form.context["url"].startswith(RP_CALLBACK)
    from_client = browser.get(path, secure=True, headers={"Sec-Fetch-Site": "cross-site"})
    assert from_client.status_code == 302 and from_client["Location"].startswith(RP_CALLBACK)


def test_a_cross_site_arrival_without_the_strict_cookie_gets_one_same_origin_hop(
    browser: DjangoClient, make_oidc_client: Any, http: requests.Session, discovery: dict[str, Any]
) -> None:
    oidc_client, secret = make_oidc_client()
    rp = rp_session(oidc_client, secret, http)
    url, _state = rp.create_authorization_url(discovery["authorization_endpoint"], code_verifier="v" * 50)
    path = urlsplit(url).path + "?" + urlsplit(url).query
    cookieless = DjangoClient(REMOTE_ADDR="203.0.113.10")  # SameSite=Strict: the browser sent none
    hop = cookieless.get(path, secure=True, headers={"Sec-Fetch-Site": "cross-site"})
    assert hop.status_code == 200 and hop.context["url"] == path and hop.context["bounce"]
    # The hop is same-origin: now the browser sends its cookie, and a signed-in user goes on.
    on = browser.get(hop.context["url"], secure=True, headers={"Sec-Fetch-Site": "same-origin"})
    assert on.status_code == 200 and on.context["url"].startswith(RP_CALLBACK)
    # Still no session after the hop: the login page, not another hop.
    login = cookieless.get(hop.context["url"], secure=True, headers={"Sec-Fetch-Site": "same-origin"})
    assert login.status_code == 302 and login["Location"].startswith("/accounts/login/")
