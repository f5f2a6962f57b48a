"""The one helper that encrypts secrets at rest (TOTP seeds, WebAuthn state, outbox bodies).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, keyed from FIELD_ENCRYPTION_KEY,
or derived from SECRET_KEY with HKDF when that is unset (dev and test only; prod requires it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class DecryptionError(Exception):
    pass


def _derive(secret: str, info: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


@lru_cache(maxsize=4)
def _fernet(key_material: str, secret_key: str) -> MultiFernet:
    keys = [k.strip() for k in key_material.split(",") if k.strip()]
    if keys:
        return MultiFernet([Fernet(_derive(k, b"bank-portal field encryption")) for k in keys])
    return MultiFernet([Fernet(_derive(secret_key, b"bank-portal field encryption"))])


def _current() -> MultiFernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError("cannot decrypt value") from exc


def keyed_hash(value: str, *, purpose: str) -> str:
    """A keyed SHA-256 of a secret we only ever compare (session keys, device ids, codes)."""
    key = hashlib.sha256(f"{purpose}:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
