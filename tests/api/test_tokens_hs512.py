"""HS512 mobile tokens (API.md: "RS256 ... or HS512"; JWT_SIGNING_KEY): what the server signs and
accepts, that nothing of the key is published, rotation, and the refusals at start-up."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, cast

import jwt
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from accounts import tokens
from tests.api.conftest import assert_error
from tests.api.helpers import bearer, issue_tokens, prod_check

KEY = secrets.token_urlsafe(64)  # 86 characters
OLD_KEY = secrets.token_urlsafe(64)


@pytest.fixture
def hs512(settings: Any) -> str:
    settings.JWT_SIGNING_KEY = KEY  # the key alone decides (accounts.tokens.KeyRing.algorithm)
    return KEY


def _claims(user: Any, sid: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": django_settings.JWT_ISSUER,
        "aud": django_settings.JWT_AUDIENCE,
        "sub": str(user.public_id),
        "iat": now,
        "exp": now + 600,
        "jti": "y" * 22,
        "sid": sid,
        "amr": ["pwd"],
    }


def test_login_refresh_and_reads_use_hs512_and_logout_still_revokes(hs512: str, api: Any, user: Any) -> None:
    family = issue_tokens(user)
    header = jwt.get_unverified_header(family["access"])
    assert header["alg"] == "HS512" and header["typ"] == "at+jwt"
    assert header["kid"] == tokens.hmac_key_id(hs512.encode()) and hs512 not in header["kid"]
    claims = jwt.decode(family["access"], hs512, algorithms=["HS512"], audience=django_settings.JWT_AUDIENCE)
    assert claims["sid"] == family["sid"]
    assert api.get("/api/v1/me", **bearer(family)).status_code == 200

    refreshed = api.post("/api/v1/auth/token/refresh", {"refresh": family["refresh"]}, format="json")
    assert refreshed.status_code == 200, refreshed.content
    assert jwt.get_unverified_header(refreshed.json()["access"])["alg"] == "HS512"
    assert api.get("/api/v1/me", **bearer(refreshed.json())).status_code == 200

    out = api.post("/api/v1/auth/logout", {"refresh": refreshed.json()["refresh"]}, format="json", **bearer(family))
    assert out.status_code == 204
    assert_error(api.get("/api/v1/me", **bearer(refreshed.json())), 401)


def test_the_jwks_never_holds_the_signing_key(hs512: str, api: Any) -> None:
    jwks = api.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys = jwks.json()["keys"]
    assert keys and all(key["kty"] in ("RSA", "EC") for key in keys), "no symmetric key is published"
    assert {key["alg"] for key in keys if key["kty"] == "RSA"} == {"RS256"}
    assert hs512 not in jwks.content.decode() and "HS512" not in jwks.content.decode()


@pytest.mark.parametrize("kind", ["rs256_with_our_rsa_key", "hs512_other_key_our_kid", "hs256_with_our_key", "none"])
def test_only_hs512_with_our_key_is_accepted(hs512: str, api: Any, user: Any, kind: str) -> None:
    """The algorithm is the server's: a token our own RSA key signed is refused under HS512."""
    good = _claims(user, issue_tokens(user)["sid"])
    kid = tokens.hmac_key_id(hs512.encode())
    ring = tokens.keyring()
    if kind == "rs256_with_our_rsa_key":
        token = jwt.encode(good, ring.private_key, algorithm="RS256", headers={"kid": ring.kid, "typ": "at+jwt"})
    elif kind == "hs512_other_key_our_kid":
        token = jwt.encode(good, secrets.token_urlsafe(64), algorithm="HS512", headers={"kid": kid, "typ": "at+jwt"})
    elif kind == "hs256_with_our_key":
        token = jwt.encode(good, hs512, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"})
    else:
        token = jwt.encode(good, cast(Any, None), algorithm="none", headers={"kid": kid, "typ": "at+jwt"})
    body = assert_error(api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}"), 401)
    assert body["code"] == "token_not_valid"
    real = jwt.encode(good, hs512, algorithm="HS512", headers={"kid": kid, "typ": "at+jwt"})
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {real}").status_code == 200


def test_an_hs512_token_is_refused_while_the_server_signs_rs256(api: Any, user: Any) -> None:
    """Without JWT_SIGNING_KEY no HMAC key exists to check one: a token claiming HS512 gets 401."""
    good = _claims(user, issue_tokens(user)["sid"])
    key = secrets.token_urlsafe(64)
    token = jwt.encode(good, key, algorithm="HS512", headers={"kid": tokens.hmac_key_id(key.encode()), "typ": "at+jwt"})
    assert_error(api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}"), 401)


def test_rotation_accepts_the_previous_key_and_signs_with_the_new_one(settings: Any, api: Any, user: Any) -> None:
    settings.JWT_SIGNING_KEY = OLD_KEY
    old = issue_tokens(user)
    settings.JWT_SIGNING_KEY = KEY
    assert_error(api.get("/api/v1/me", **bearer(old)), 401)  # the old key is no longer configured
    settings.JWT_PREVIOUS_SIGNING_KEYS = f"{OLD_KEY}\n"
    assert api.get("/api/v1/me", **bearer(old)).status_code == 200
    new = issue_tokens(user)["access"]
    assert jwt.get_unverified_header(new)["kid"] == tokens.hmac_key_id(KEY.encode())


@pytest.mark.parametrize(
    ("current", "previous"),
    [("too-short", ""), (KEY, "short-old-key"), ("", OLD_KEY)],
    ids=["short", "short-old", "orphan"],
)
def test_unusable_signing_keys_are_refused(settings: Any, current: str, previous: str) -> None:
    settings.JWT_SIGNING_KEY, settings.JWT_PREVIOUS_SIGNING_KEYS = current, previous
    with pytest.raises(ImproperlyConfigured, match="JWT_"):
        tokens.keyring()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signing_key", "reason"),
    [("s" * 63, "JWT_SIGNING_KEY must be at least 64 bytes"), ("p" * 64, "must not be DJANGO_SECRET_KEY")],
    ids=["short", "the-django-secret-key"],
)
def test_prod_settings_refuse_to_start_with_an_unusable_signing_key(
    tmp_path: Path, signing_key: str, reason: str
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = tmp_path / "jwt.pem"
    pem.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    result = prod_check(JWT_PRIVATE_KEY_FILE=str(pem), JWT_SIGNING_KEY=signing_key, DJANGO_SECRET_KEY="p" * 64)
    assert result.returncode != 0
    assert reason in result.stderr
    assert signing_key not in result.stderr, "the key itself is never printed"
