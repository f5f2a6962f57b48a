"""Access tokens: forged or broken ones get 401 JSON (never 500); real ones verify with only the JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.test import override_settings

from accounts import tokens
from tests.api.conftest import assert_error
from tests.api.helpers import bearer, issue_tokens, prod_check


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user: Any, sid: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(user.public_id),
        "iat": now,
        "exp": now + 600,
        "jti": "x" * 22,
        "sid": sid,
        "amr": ["pwd"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign_real(claims: dict[str, Any], **headers: Any) -> str:
    ring = tokens.keyring()
    return jwt.encode(
        claims, ring.private_key, algorithm="RS256", headers={"kid": ring.kid, "typ": "at+jwt", **headers}
    )


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)])


def _hs256_with_public_key(claims: dict[str, Any]) -> str:
    """The classic key-confusion attack: HMAC-SHA256 keyed with the server's public PEM."""
    ring = tokens.keyring()
    pem = ring.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": ring.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{_b64(signature)}"


def _other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def family(user: Any) -> dict[str, Any]:
    return issue_tokens(user)


def test_real_token_works(api, family):
    response = api.get("/api/v1/me", **bearer(family))
    assert response.status_code == 200
    assert response.json()["email"]


def test_claims_are_exactly_the_contract_and_no_personal_data(user, family):
    header = jwt.get_unverified_header(family["access"])
    assert header["alg"] == "RS256" and header["kid"] == tokens.keyring().kid
    claims = jwt.decode(family["access"], options={"verify_signature": False})
    # The contract's claims, plus auth_time (RFC 9068 / OIDC): when the login proved its credentials.
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp", "jti", "sid", "amr", "auth_time"}
    assert claims["auth_time"] <= claims["iat"]
    assert claims["sub"] == str(user.public_id)
    assert claims["sid"] == family["sid"]
    assert claims["amr"] == ["pwd"]
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert user.email not in json.dumps(claims) and "customer" not in json.dumps(claims)


def test_independent_verifier_with_only_the_jwks_accepts_a_real_token(api, family):
    """PyJWT, given nothing but the published JWKS, verifies the token (kid, RS256, iss, aud)."""
    jwks = api.get("/.well-known/jwks.json").json()
    assert all("d" not in key and "p" not in key for key in jwks["keys"]), "no private parts published"
    key_set = jwt.PyJWKSet.from_dict(jwks)
    kid = jwt.get_unverified_header(family["access"])["kid"]
    key = next(k for k in key_set.keys if k.key_id == kid)
    claims = jwt.decode(
        family["access"], key.key, algorithms=["RS256"], audience="bank-portal-mobile", issuer="bank-portal"
    )
    assert claims["sid"] == family["sid"]


FORGERIES = [
    "alg_none",
    "alg_none_no_signature",
    "hs256_with_public_key",
    "unknown_kid",
    "attacker_key_with_our_kid",
    "no_kid",
    "wrong_iss",
    "wrong_aud",
    "expired",
    "not_yet_valid_iat",
    "not_yet_valid_nbf",
    "missing_sid",
    "bad_sub",
    "amr_not_a_list",
    "wrong_typ",
    "truncated",
    "signature_flipped",
    "garbage",
    "three_dots_garbage",
    "huge",
    "non_ascii",
    "json_header_not_object",
]


def _forge(kind: str, user: Any, sid: str, real: str) -> str:
    ring = tokens.keyring()
    good = _claims(user, sid)
    now = int(time.time())
    if kind == "alg_none":
        return _unsigned({"alg": "none", "typ": "at+jwt", "kid": ring.kid}, good, b"sig")
    if kind == "alg_none_no_signature":
        return _unsigned({"alg": "none", "typ": "at+jwt", "kid": ring.kid}, good)
    if kind == "hs256_with_public_key":
        return _hs256_with_public_key(good)
    if kind == "unknown_kid":
        return jwt.encode(good, _other_key(), algorithm="RS256", headers={"kid": "not-ours", "typ": "at+jwt"})
    if kind == "attacker_key_with_our_kid":
        return jwt.encode(good, _other_key(), algorithm="RS256", headers={"kid": ring.kid, "typ": "at+jwt"})
    if kind == "no_kid":
        return jwt.encode(good, ring.private_key, algorithm="RS256", headers={"typ": "at+jwt"})
    if kind == "wrong_iss":
        return _sign_real(_claims(user, sid, iss="https://evil.example"))
    if kind == "wrong_aud":
        return _sign_real(_claims(user, sid, aud="another-app"))
    if kind == "expired":
        return _sign_real(_claims(user, sid, iat=now - 3600, exp=now - 1800))
    if kind == "not_yet_valid_iat":
        return _sign_real(_claims(user, sid, iat=now + 3600, exp=now + 4500))
    if kind == "not_yet_valid_nbf":
        return _sign_real({**good, "nbf": now + 3600})
    if kind == "missing_sid":
        return _sign_real({k: v for k, v in good.items() if k != "sid"})
    if kind == "bad_sub":
        return _sign_real(_claims(user, sid, sub="1 OR 1=1"))
    if kind == "amr_not_a_list":
        return _sign_real(_claims(user, sid, amr="pwd"))
    if kind == "wrong_typ":
        return _sign_real(good, typ="JWT")
    if kind == "truncated":
        return real[:-12]
    if kind == "signature_flipped":
        head, body, signature = real.split(".")
        return f"{head}.{body}.{signature[::-1]}"
    if kind == "garbage":
        return "this-is-not-a-token"
    if kind == "three_dots_garbage":
        return "a.b.c"
    if kind == "huge":
        return "A" * 20000
    if kind == "non_ascii":
        return "ey\u00e9\u00e9.\u2603.x"
    if kind == "json_header_not_object":
        return f"{_b64(b'[1,2]')}.{_b64(json.dumps(good).encode())}.{_b64(b'x')}"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_or_broken_tokens_get_401_json(api, user, family, kind):
    token = _forge(kind, user, family["sid"], family["access"])
    response = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    body = assert_error(response, 401)
    assert body["code"] in {"token_not_valid", "token_expired", "bad_authorization_header"}
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Bearer  ", "bearer x.y.z", "Basic dXNlcjpwYXNz", "Token abc", "\u00e9\u00e9"],
)
def test_malformed_authorization_headers_get_401_json(api, header):
    response = api.get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert_error(response, 401)


def test_no_token_is_401_not_authenticated(api):
    assert_error(api.get("/api/v1/me"), 401, "not_authenticated")


def test_access_token_expires_after_15_minutes(api, user, time_machine):
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    family = issue_tokens(user)
    time_machine.move_to("2026-03-02 09:14:00+00:00", tick=False)
    assert api.get("/api/v1/me", **bearer(family)).status_code == 200
    time_machine.move_to("2026-03-02 09:15:11+00:00", tick=False)
    assert_error(api.get("/api/v1/me", **bearer(family)), 401, "token_expired")


def test_key_rotation_previous_key_still_accepted_and_published(api, user, family):
    old = _other_key()
    old_public_pem = (
        old.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    old_kid = tokens.key_id(old.public_key())
    claims = _claims(user, family["sid"])
    old_token = jwt.encode(claims, old, algorithm="RS256", headers={"kid": old_kid, "typ": "at+jwt"})

    assert_error(api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {old_token}"), 401)
    with override_settings(JWT_PREVIOUS_PUBLIC_KEYS=old_public_pem):
        kids = [k["kid"] for k in api.get("/.well-known/jwks.json").json()["keys"] if k["kty"] == "RSA"]
        assert kids == [tokens.keyring().kid, old_kid], "current key first, then the previous one"
        assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {old_token}").status_code == 200
        # New tokens are signed with the current key only.
        assert jwt.get_unverified_header(issue_tokens(user)["access"])["kid"] == tokens.keyring().kid


def test_configured_private_key_is_used(tmp_path, user):
    key = _other_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = tmp_path / "jwt.pem"
    path.write_bytes(pem)
    with override_settings(JWT_PRIVATE_KEY_FILE=str(path)):
        token = issue_tokens(user)["access"]
        assert jwt.get_unverified_header(token)["kid"] == tokens.key_id(key.public_key())
        jwt.decode(token, key.public_key(), algorithms=["RS256"], audience=settings.JWT_AUDIENCE)


def test_refuse_mode_without_a_key_raises(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.JWT_KEY_FALLBACK = "refuse"
    with pytest.raises(ImproperlyConfigured):
        tokens.keyring()


def test_dev_file_mode_generates_once_and_reuses(tmp_path, settings):
    settings.JWT_KEY_FALLBACK = "file"
    settings.JWT_DEV_KEY_FILE = str(tmp_path / "secrets" / "dev.pem")
    first = tokens.keyring().kid
    assert (tmp_path / "secrets" / "dev.pem").stat().st_mode & 0o077 == 0
    tokens._keyring.cache_clear()
    assert tokens.keyring().kid == first


def test_jti_is_unique(user):
    a, b = issue_tokens(user)["access"], issue_tokens(user)["access"]
    ja = jwt.decode(a, options={"verify_signature": False})["jti"]
    jb = jwt.decode(b, options={"verify_signature": False})["jti"]
    assert ja != jb
    uuid.UUID(jwt.decode(a, options={"verify_signature": False})["sid"])


@pytest.mark.slow
def test_prod_settings_refuse_to_start_without_a_jwt_key():
    """prod.py requires JWT_PRIVATE_KEY(_FILE); no generated fallback outside dev and test."""
    result = prod_check()
    assert result.returncode != 0
    assert "JWT_PRIVATE_KEY" in result.stderr
