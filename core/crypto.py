"""The one helper that encrypts secrets at rest (TOTP seeds, WebAuthn state, outbox bodies).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, keyed from FIELD_ENCRYPTION_KEY,
or derived from SECRET_KEY with HKDF when that is unset (dev and test only; prod requires it).

Rotation: FIELD_ENCRYPTION_KEY is a comma-separated list; the first key encrypts, every key
decrypts (MultiFernet). Put the new key first, deploy, run `manage.py rotate_field_encryption`
(re-encrypts every `*_encrypted` column under the first key), then drop the old key.
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
def _keys(key_material: str, secret_key: str) -> tuple[Fernet, ...]:
    keys = [k.strip() for k in key_material.split(",") if k.strip()] or [secret_key]
    return tuple(Fernet(_derive(k, b"bank-portal field encryption")) for k in keys)


@lru_cache(maxsize=4)
def _fernet(key_material: str, secret_key: str) -> MultiFernet:
    return MultiFernet(list(_keys(key_material, secret_key)))


def _current() -> MultiFernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError("cannot decrypt value") from exc


def is_current(token: str) -> bool:
    """Whether the value is already encrypted under the first (current) key."""
    primary = _keys(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)[0]
    try:
        primary.decrypt(token.encode())
    except (InvalidToken, ValueError):
        return False
    return True


def reencrypt(token: str) -> str:
    """The same plaintext under the current key (and the same Fernet timestamp)."""
    try:
        return _current().rotate(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError("cannot decrypt value with any configured key") from exc


def keyed_hash(value: str, *, purpose: str) -> str:
    """A keyed SHA-256 of a secret we only ever compare (session keys, device ids, codes)."""
    key = hashlib.sha256(f"{purpose}:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
