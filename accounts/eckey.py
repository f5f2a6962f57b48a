"""The key ring's second signing key: an EC P-256 key for ES256 (FAPI 2.0 clients of the provider).

It sits beside the RSA key of accounts.tokens in the one JWKS (/.well-known/jwks.json, `alg`
ES256, `kid` its RFC 7638 thumbprint). Loaded like the RSA key: JWT_EC_PRIVATE_KEY (PEM) or
JWT_EC_PRIVATE_KEY_FILE; without one, JWT_KEY_FALLBACK decides ("generate": a fresh key per
process; "file": generated once into JWT_EC_DEV_KEY_FILE; "refuse": an error). During a
rotation JWT_EC_PREVIOUS_PUBLIC_KEYS holds old public keys, still accepted and published.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from joserfc.jwk import ECKey

ALGORITHM = "ES256"


@dataclass(frozen=True)
class ECKeyRing:
    private_key: ec.EllipticCurvePrivateKey
    kid: str
    public_keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    data = ECKey.import_key(pem).as_dict(private=False)
    return {k: str(data[k]) for k in ("kty", "crv", "x", "y")}


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return str(ECKey.import_key(pem).thumbprint())


def _load_private(pem: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"the JWT EC private key cannot be loaded: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ImproperlyConfigured("JWT_EC_PRIVATE_KEY must be an EC P-256 private key (ES256)")
    return key


_generated_lock = threading.Lock()
_generated: list[ec.EllipticCurvePrivateKey] = []


def _fallback(mode: str, dev_file: str) -> ec.EllipticCurvePrivateKey:
    if mode == "generate":
        with _generated_lock:
            if not _generated:
                _generated.append(ec.generate_private_key(ec.SECP256R1()))
            return _generated[0]
    if mode == "file":
        path = Path(dev_file)
        if path.exists():
            return _load_private(path.read_text())
        key = ec.generate_private_key(ec.SECP256R1())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_pem(key))
        return key
    raise ImproperlyConfigured("JWT_EC_PRIVATE_KEY or JWT_EC_PRIVATE_KEY_FILE must be set (an EC P-256 key, PEM)")


@lru_cache(maxsize=4)
def _ring(private_pem: str, private_file: str, previous: str, mode: str, dev_file: str) -> ECKeyRing:
    if not private_pem and private_file:
        private_pem = Path(private_file).read_text()
    private_key = _load_private(private_pem) if private_pem else _fallback(mode, dev_file)
    kid = key_id(private_key.public_key())
    public_keys: dict[str, ec.EllipticCurvePublicKey] = {kid: private_key.public_key()}
    marker = "-----END PUBLIC KEY-----"
    for block in previous.split(marker):
        if "-----BEGIN" not in block:
            continue
        old = serialization.load_pem_public_key((block.strip() + "\n" + marker + "\n").encode())
        if not isinstance(old, ec.EllipticCurvePublicKey):
            raise ImproperlyConfigured("JWT_EC_PREVIOUS_PUBLIC_KEYS must hold EC P-256 public keys")
        public_keys.setdefault(key_id(old), old)
    return ECKeyRing(private_key=private_key, kid=kid, public_keys=public_keys)


def keyring() -> ECKeyRing:
    return _ring(
        str(getattr(settings, "JWT_EC_PRIVATE_KEY", "")),
        str(getattr(settings, "JWT_EC_PRIVATE_KEY_FILE", "")),
        str(getattr(settings, "JWT_EC_PREVIOUS_PUBLIC_KEYS", "")),
        str(settings.JWT_KEY_FALLBACK),
        str(
            getattr(settings, "JWT_EC_DEV_KEY_FILE", "") or Path(settings.JWT_DEV_KEY_FILE).with_name("jwt-ec-dev.pem")
        ),
    )


def configured() -> bool:
    """False under "refuse" without a key: then no ES256 key is published and FAPI clients are refused."""
    return bool(
        getattr(settings, "JWT_EC_PRIVATE_KEY", "")
        or getattr(settings, "JWT_EC_PRIVATE_KEY_FILE", "")
        or settings.JWT_KEY_FALLBACK in ("generate", "file")
    )


def jwks_entries() -> list[dict[str, str]]:
    if not configured():
        return []
    return [
        {**_public_jwk(key), "use": "sig", "alg": ALGORITHM, "kid": kid} for kid, key in keyring().public_keys.items()
    ]
