"""DPoP for the mobile API's own tokens (issue 18, API_REQUIRE_DPOP): the app's key proves every
token request and resource call; a stolen access or refresh token is useless without it.

The app side is requests-oauth2client's DPoPKey / DPoPToken (a real DPoP client) over real HTTP
to pytest-django's live_server, against PostgreSQL and Redis.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from requests_oauth2client import DPoPKey, DPoPToken

from accounts.models import User, UserSession
from audit.models import AuditEvent
from core.dpop import access_token_hash

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(live_server: Any, settings: Any) -> str:
    settings.PUBLIC_BASE_URL = live_server.url
    settings.API_REQUIRE_DPOP = True
    return str(live_server.url)


def _login(server: str, user: User, password: str, key: DPoPKey | None) -> requests.Response:
    url = f"{server}/api/v1/auth/login"
    headers = {"DPoP": str(key.proof(htm="POST", htu=url))} if key else {}
    return requests.post(url, json={"email": user.email, "password": password}, headers=headers, timeout=10)


def _refresh(server: str, refresh: str, key: DPoPKey | None) -> requests.Response:
    url = f"{server}/api/v1/auth/token/refresh"
    headers = {"DPoP": str(key.proof(htm="POST", htu=url))} if key else {}
    return requests.post(url, json={"refresh": refresh}, headers=headers, timeout=10)


def test_login_and_refresh_demand_a_proof_and_bind_the_tokens(server: str, user: User, password: str) -> None:
    refused = _login(server, user, password, None)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_dpop_proof"
    assert not UserSession.objects.filter(user=user, kind="mobile").exists()  # nothing was started

    key = DPoPKey.generate(alg="ES256")
    response = _login(server, user, password, key)
    assert response.status_code == 200, response.content
    pair = response.json()
    assert pair["token_type"] == "DPoP"
    keys = KeySet.import_key_set(requests.get(f"{server}/.well-known/jwks.json", timeout=10).json())
    claims = jose_jwt.decode(pair["access"], keys, algorithms=["RS256"]).claims
    assert claims["cnf"] == {"jkt": key.dpop_jkt}
    assert UserSession.objects.get(pk=claims["sid"]).dpop_jkt == key.dpop_jkt

    token = DPoPToken(access_token=pair["access"], _dpop_key=key)
    me = requests.get(f"{server}/api/v1/me", auth=token, timeout=10)
    assert me.status_code == 200 and me.json()["email"] == user.email

    # Refresh: a proof of the same key is needed; the thief's key or none is refused.
    assert _refresh(server, pair["refresh"], None).json()["code"] == "invalid_dpop_proof"
    thief = _refresh(server, pair["refresh"], DPoPKey.generate(alg="ES256"))
    assert thief.status_code == 401 and thief.json()["code"] == "invalid_dpop_proof"
    renewed = _refresh(server, pair["refresh"], key)  # the owner's token was not spent by the thief
    assert renewed.status_code == 200, renewed.content
    assert renewed.json()["token_type"] == "DPoP"
    new_claims = jose_jwt.decode(renewed.json()["access"], keys, algorithms=["RS256"]).claims
    assert new_claims["cnf"] == {"jkt": key.dpop_jkt}


def test_a_stolen_mobile_access_token_or_a_replayed_proof_is_refused(server: str, user: User, password: str) -> None:
    key = DPoPKey.generate(alg="ES256")
    pair = _login(server, user, password, key).json()
    url = f"{server}/api/v1/me"
    bearer = requests.get(url, headers={"Authorization": f"Bearer {pair['access']}"}, timeout=10)
    assert bearer.status_code == 401 and bearer.headers["WWW-Authenticate"].startswith("DPoP ")
    no_proof = requests.get(url, headers={"Authorization": f"DPoP {pair['access']}"}, timeout=10)
    assert no_proof.status_code == 401 and no_proof.json()["code"] == "invalid_dpop_proof"
    thief = DPoPKey.generate(alg="ES256")
    stolen = requests.get(
        url,
        headers={
            "Authorization": f"DPoP {pair['access']}",
            "DPoP": str(thief.proof(htm="GET", htu=url, ath=access_token_hash(pair["access"]))),
        },
        timeout=10,
    )
    assert stolen.status_code == 401
    proof = str(key.proof(htm="GET", htu=url, ath=access_token_hash(pair["access"])))
    headers = {"Authorization": f"DPoP {pair['access']}", "DPoP": proof}
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    replay = requests.get(url, headers=headers, timeout=10)
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    assert AuditEvent.objects.filter(type="token.dpop_proof_replayed", details__endpoint="mobile_resource").exists()
    # A proof without ath (not tied to this token) is refused too.
    no_ath = str(key.proof(htm="GET", htu=url))
    assert requests.get(url, headers={**headers, "DPoP": no_ath}, timeout=10).status_code == 401


def test_without_api_require_dpop_bearer_logins_keep_working(
    server: str, user: User, password: str, settings: Any
) -> None:
    settings.API_REQUIRE_DPOP = False
    pair = _login(server, user, password, None).json()
    assert pair["token_type"] == "Bearer"
    url = f"{server}/api/v1/me"
    assert requests.get(url, headers={"Authorization": f"Bearer {pair['access']}"}, timeout=10).status_code == 200
    # A bearer token presented with the DPoP scheme is refused (RFC 9449 7.1).
    assert requests.get(url, headers={"Authorization": f"DPoP {pair['access']}"}, timeout=10).status_code == 401
    # An app that sends a proof anyway gets bound tokens.
    key = DPoPKey.generate(alg="ES256")
    bound = _login(server, user, password, key).json()
    assert bound["token_type"] == "DPoP"
    assert requests.get(url, auth=DPoPToken(access_token=bound["access"], _dpop_key=key), timeout=10).status_code == 200


def test_the_second_factor_step_demands_a_proof_before_the_code_and_binds_the_tokens(
    server: str, user: User, password: str, add_totp: Any
) -> None:
    totp = add_totp(user)
    key = DPoPKey.generate(alg="ES256")
    first = _login(server, user, password, key).json()
    assert first["mfa_required"] is True
    url = f"{server}/api/v1/auth/mfa/verify"
    body = {"mfa_token": first["mfa_token"], "code": totp.now()}
    refused = requests.post(url, json=body, timeout=10)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_dpop_proof"
    # Refused before the code was looked at: the pending login and the code still work.
    done = requests.post(url, json=body, headers={"DPoP": str(key.proof(htm="POST", htu=url))}, timeout=10)
    assert done.status_code == 200, done.content
    assert done.json()["token_type"] == "DPoP"
    me = requests.get(
        f"{server}/api/v1/me", auth=DPoPToken(access_token=done.json()["access"], _dpop_key=key), timeout=10
    )
    assert me.status_code == 200
