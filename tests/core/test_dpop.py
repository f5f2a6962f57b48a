"""core.dpop: each check of RFC 9449 4.3 refuses the proof it is about (proofs made with joserfc;
replay through the test Redis; the clock moved with time_machine)."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from core import dpop

HTU = "https://portal.bank.test/api/v1/me"


def proof(
    key: Any, *, alg: str = "ES256", typ: str = "dpop+jwt", jwk: dict[str, Any] | None = None, **claims: Any
) -> str:
    header = {"alg": alg, "typ": typ, "jwk": jwk if jwk is not None else key.as_dict(private=False)}
    body = {"htm": "GET", "htu": HTU, "iat": int(time.time()), "jti": secrets.token_urlsafe(12), **claims}
    return jwt.encode(header, body, key, algorithms=[alg])


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256")


def test_a_good_proof_is_accepted_once_and_names_its_key(key: ECKey) -> None:
    good = proof(key)
    checked = dpop.verify_proof(good, htm="GET", htu=HTU + "?page=2")  # query ignored
    assert checked.jkt == key.thumbprint()
    with pytest.raises(dpop.DPoPError) as replay:
        dpop.verify_proof(good, htm="GET", htu=HTU)
    assert replay.value.replayed


@pytest.mark.parametrize(
    "change, message",
    [
        ({"typ": "JWT"}, "typ"),
        ({"htm": "POST"}, "htm"),
        ({"htu": "https://evil.example/api/v1/me"}, "htu"),
        ({"jti": "short"}, "jti"),
    ],
)
def test_wrong_type_method_url_or_jti_is_refused(key: ECKey, change: dict[str, Any], message: str) -> None:
    typ = change.pop("typ", "dpop+jwt")
    with pytest.raises(dpop.DPoPError, match=message):
        dpop.verify_proof(proof(key, typ=typ, **change), htm="GET", htu=HTU)


def test_none_hmac_private_keys_and_short_rsa_are_refused(key: ECKey) -> None:
    good = proof(key)
    header, body, _ = good.split(".")
    with pytest.raises(dpop.DPoPError, match="signed with one of"):
        dpop.verify_proof("eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ." + body + ".", htm="GET", htu=HTU)
    secret = OctKey.generate_key(256)
    with pytest.raises(dpop.DPoPError):
        dpop.verify_proof(proof(secret, alg="HS256", jwk=secret.as_dict()), htm="GET", htu=HTU)
    with pytest.raises(dpop.DPoPError, match="public key"):
        dpop.verify_proof(proof(key, jwk=key.as_dict(private=True)), htm="GET", htu=HTU)
    with pytest.warns(Warning):
        small = RSAKey.generate_key(1024)
    with pytest.raises(dpop.DPoPError, match="2048"):
        dpop.verify_proof(proof(small, alg="PS256"), htm="GET", htu=HTU)
    other = ECKey.generate_key("P-256")
    forged = header + "." + body + "." + proof(other).split(".")[2]
    with pytest.raises(dpop.DPoPError, match="signature"):
        dpop.verify_proof(forged, htm="GET", htu=HTU)


def test_iat_window_ath_and_the_bound_key(key: ECKey) -> None:
    with pytest.raises(dpop.DPoPError, match="iat"):
        dpop.verify_proof(proof(key, iat=int(time.time()) - 61), htm="GET", htu=HTU)
    with pytest.raises(dpop.DPoPError, match="iat"):
        dpop.verify_proof(proof(key, iat=int(time.time()) + 30), htm="GET", htu=HTU)
    dpop.verify_proof(proof(key, iat=int(time.time()) + 8), htm="GET", htu=HTU)  # 10 s of clock offset
    token = "an.access.token"
    with pytest.raises(dpop.DPoPError, match="ath"):
        dpop.verify_proof(proof(key), htm="GET", htu=HTU, access_token=token)
    ok = proof(key, ath=dpop.access_token_hash(token))
    with pytest.raises(dpop.DPoPError, match="another key"):
        dpop.verify_proof(ok, htm="GET", htu=HTU, access_token=token, jkt=ECKey.generate_key("P-256").thumbprint())
    assert dpop.verify_proof(ok, htm="GET", htu=HTU, access_token=token, jkt=key.thumbprint()).jkt


def test_server_nonces_expire(key: ECKey, settings: Any) -> None:
    settings.DPOP_REQUIRE_NONCE = True
    with pytest.raises(dpop.DPoPError) as missing:
        dpop.verify_proof(proof(key), htm="GET", htu=HTU)
    assert missing.value.error == "use_dpop_nonce"
    nonce = dpop.nonce_issue()
    assert dpop.verify_proof(proof(key, nonce=nonce), htm="GET", htu=HTU).jkt
    with time_machine.travel(timezone.now() + timedelta(seconds=301), tick=False):
        late = proof(key, nonce=nonce, iat=int(time.time()))
        with pytest.raises(dpop.DPoPError) as expired:
            dpop.verify_proof(late, htm="GET", htu=HTU)
        assert expired.value.error == "use_dpop_nonce"


def test_a_ps256_proof_with_a_2048_bit_rsa_key_is_accepted() -> None:
    rsa = RSAKey.generate_key(2048)
    assert dpop.verify_proof(proof(rsa, alg="PS256"), htm="GET", htu=HTU).jkt == rsa.thumbprint()
