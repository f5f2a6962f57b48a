"""Access tokens of the mobile API: JWTs (RS256, or HS512), the signing key, rotation and the JWKS.

The algorithm is fixed by the server's configuration, never by a token: RS256, or HS512 when
JWT_SIGNING_KEY is set (API.md allows both). A token's header only selects which of *our* keys
(by `kid`) checks it, among the keys of that one algorithm. Claims are exactly iss, aud, sub (the
user's public UUID), iat, exp, jti, sid (the login) and amr: no personal data.

RSA keys: JWT_PRIVATE_KEY (PEM) or JWT_PRIVATE_KEY_FILE. Without one, JWT_KEY_FALLBACK decides:
"generate" (tests: a fresh key per process), "file" (dev: generated once and kept in
JWT_DEV_KEY_FILE) or "refuse" (prod; prod settings also refuse to start). During a rotation,
JWT_PREVIOUS_PUBLIC_KEYS(_FILE) hold the old public keys: still accepted, and published. The RSA
key is loaded under HS512 too: the identity provider signs its tokens with it (idp.tokens) and
the JWKS publishes it.

HS512 (JWT_SIGNING_KEY, at least 64 bytes, RFC 7518 3.2): only this server can verify the mobile
tokens (nothing of the key is published; its `kid` is a one-way digest), and signing costs a
tenth of RS256's (~0.04 ms against ~0.4 ms per token here: a fifth of a refresh's CPU). During a
rotation JWT_PREVIOUS_SIGNING_KEYS (whitespace-separated) are still accepted.

Refresh tokens are not JWTs: they are opaque random strings stored hashed (see
accounts.models.RefreshToken), since every refresh must hit the database anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068 header `typ`, not a secret)
RSA_ALGORITHM = "RS256"
HMAC_ALGORITHM = "HS512"
MIN_HMAC_KEY_BYTES = 64  # RFC 7518 3.2: at least the hash's size
MAX_TOKEN_LENGTH = 4096
CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "sid", "amr")


class TokenInvalid(Exception):
    """An access token that must be refused (401). `code` is the stable API error code."""

    def __init__(self, detail: str = "The access token is not valid.", code: str = "token_not_valid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


# --- Keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    private_key: rsa.RSAPrivateKey
    kid: str
    # kid -> public key; the current key first, then previous keys still accepted.
    public_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    # HS512 (JWT_SIGNING_KEY set): kid -> secret, the current key first, then previous ones.
    hmac_keys: dict[str, bytes] = field(default_factory=dict)

    @property
    def algorithm(self) -> str:
        """The one algorithm of the mobile access tokens: HS512 with a signing key, else RS256."""
        return HMAC_ALGORITHM if self.hmac_keys else RSA_ALGORITHM

    def signing(self) -> tuple[Any, str]:
        """(key, kid) that signs new access tokens."""
        if self.hmac_keys:
            kid = next(iter(self.hmac_keys))
            return self.hmac_keys[kid], kid
        return self.private_key, self.kid

    def verifying(self) -> dict[str, Any]:
        """kid -> key for the configured algorithm only: an RS256 token is refused under HS512 and
        an HS512 token under RS256, whatever its header says."""
        return self.hmac_keys or self.public_keys


def _jwk_public(key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = key.public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}


def key_id(key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key."""
    canonical = json.dumps(_jwk_public(key), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _generate() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_private(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"the JWT private key cannot be loaded: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ImproperlyConfigured("the JWT private key must be an RSA key of at least 2048 bits")
    return key


def _load_public_keys(text: str) -> list[rsa.RSAPublicKey]:
    keys: list[rsa.RSAPublicKey] = []
    marker = "-----END PUBLIC KEY-----"
    for block in text.split(marker):
        if "-----BEGIN" not in block:
            continue
        try:
            key = serialization.load_pem_public_key((block.strip() + "\n" + marker + "\n").encode())
        except ValueError as exc:
            raise ImproperlyConfigured(f"JWT_PREVIOUS_PUBLIC_KEYS holds a key that cannot be loaded: {exc}") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise ImproperlyConfigured("JWT_PREVIOUS_PUBLIC_KEYS must hold RSA public keys")
        keys.append(key)
    return keys


def hmac_key_id(secret: bytes) -> str:
    """A name for an HS512 key that reveals nothing of it (a keyed digest, truncated)."""
    digest = hmac.new(secret, b"bank-portal mobile access token kid", hashlib.sha256).digest()
    return "hs512-" + base64.urlsafe_b64encode(digest[:12]).rstrip(b"=").decode()


def _load_hmac(value: str, name: str) -> bytes:
    secret = value.encode("utf-8")
    if len(secret) < MIN_HMAC_KEY_BYTES:
        raise ImproperlyConfigured(
            f"{name} must be at least {MIN_HMAC_KEY_BYTES} bytes for HS512 (RFC 7518 3.2), e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    return secret


def hmac_keys(current: str, previous: str) -> dict[str, bytes]:
    if not current:
        if previous.strip():
            raise ImproperlyConfigured("JWT_PREVIOUS_SIGNING_KEYS is set but JWT_SIGNING_KEY is not")
        return {}
    keys = [_load_hmac(current, "JWT_SIGNING_KEY")]
    keys += [_load_hmac(old, "each of JWT_PREVIOUS_SIGNING_KEYS") for old in previous.split()]
    out: dict[str, bytes] = {}
    for secret in keys:
        out.setdefault(hmac_key_id(secret), secret)
    return out


_generated_lock = threading.Lock()
_generated: list[rsa.RSAPrivateKey] = []


def _fallback_key(mode: str, dev_file: str) -> rsa.RSAPrivateKey:
    if mode == "generate":
        with _generated_lock:
            if not _generated:
                _generated.append(_generate())
            return _generated[0]
    if mode == "file":
        path = Path(dev_file)
        if path.exists():
            return _load_private(path.read_text())
        key = _generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_pem(key))
        return key
    raise ImproperlyConfigured("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must be set (an RSA private key, PEM)")


@lru_cache(maxsize=4)
def _keyring(
    private_pem: str,
    private_file: str,
    previous: str,
    previous_file: str,
    mode: str,
    dev_file: str,
    signing_key: str = "",
    previous_signing_keys: str = "",
) -> KeyRing:
    if not private_pem and private_file:
        private_pem = Path(private_file).read_text()
    private_key = _load_private(private_pem) if private_pem else _fallback_key(mode, dev_file)
    kid = key_id(private_key.public_key())
    public_keys: dict[str, rsa.RSAPublicKey] = {kid: private_key.public_key()}
    previous_text = previous + ("\n" + Path(previous_file).read_text() if previous_file else "")
    for old in _load_public_keys(previous_text):
        public_keys.setdefault(key_id(old), old)
    return KeyRing(
        private_key=private_key,
        kid=kid,
        public_keys=public_keys,
        hmac_keys=hmac_keys(signing_key, previous_signing_keys),
    )


def keyring() -> KeyRing:
    return _keyring(
        settings.JWT_PRIVATE_KEY,
        settings.JWT_PRIVATE_KEY_FILE,
        settings.JWT_PREVIOUS_PUBLIC_KEYS,
        settings.JWT_PREVIOUS_PUBLIC_KEYS_FILE,
        settings.JWT_KEY_FALLBACK,
        settings.JWT_DEV_KEY_FILE,
        settings.JWT_SIGNING_KEY,
        settings.JWT_PREVIOUS_SIGNING_KEYS,
    )


def jwks() -> dict[str, list[dict[str, str]]]:
    """The public keys as a JSON Web Key Set: the current RSA key first, then previous ones; then the
    ES256 key of FAPI 2.0 provider clients (accounts.eckey), so the JWKS stays one document. An
    HS512 key is a secret and is never published."""
    from accounts import eckey

    return {
        "keys": [
            {**_jwk_public(key), "use": "sig", "alg": RSA_ALGORITHM, "kid": kid}
            for kid, key in keyring().public_keys.items()
        ]
        + eckey.jwks_entries()
    }


# --- Access tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessClaims:
    """A verified access token; request.auth in API views."""

    sub: str
    sid: str
    jti: str
    amr: list[str]
    iat: int
    exp: int
    # When the login behind the token last proved a credential (epoch seconds); refresh keeps it.
    auth_time: int | None = None
    # cnf.jkt (RFC 9449): the DPoP key the token is bound to, "" for a bearer token (accounts.dpop).
    jkt: str = ""

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def __getitem__(self, name: str) -> Any:  # convenience: request.auth["sid"]
        return getattr(self, name)


def access_token_issue(
    *,
    user_public_id: str,
    sid: str,
    amr: list[str],
    now: datetime | None = None,
    auth_time: int | None = None,
    jkt: str = "",
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    ring = keyring()
    issued = int((now or timezone.now()).timestamp())
    lifetime = int(settings.JWT_ACCESS_LIFETIME_SECONDS)
    payload = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(user_public_id),
        "iat": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_urlsafe(16),
        "sid": str(sid),
        "amr": list(amr),
    }
    if auth_time is not None:
        payload["auth_time"] = int(auth_time)
    if jkt:
        payload["cnf"] = {"jkt": jkt}  # DPoP-bound (issue 18)
    key, kid = ring.signing()
    token = jwt.encode(payload, key, algorithm=ring.algorithm, headers={"kid": kid, "typ": ACCESS_TOKEN_TYPE})
    return token, lifetime


# Tokens this process verified lately: (raw token, iss, aud, alg) -> (kid, claims). The signature
# and claim checks of one exact token string give the same answer every time (the key ring is
# checked again by kid, among the keys of the configured algorithm); exp and iat, which depend on
# the clock, are checked on every use.
# An app presents the same token for up to 15 minutes: PyJWT's parse and RSA verification
# (about a sixth of a bearer read's CPU) run once per token and process instead of per request.
_VERIFIED: dict[tuple[str, str, str, str], tuple[str, AccessClaims]] = {}
_VERIFIED_MAX = 20_000


def _clock_check(claims: AccessClaims) -> None:
    now = int(timezone.now().timestamp())
    leeway = int(settings.JWT_LEEWAY_SECONDS)
    if claims.exp <= now - leeway:
        raise TokenInvalid("The access token has expired.", code="token_expired")
    if claims.iat > now + leeway:
        raise TokenInvalid()  # issued in the future: not yet valid


def access_token_decode(raw: str | bytes) -> AccessClaims:
    """Verifies signature, algorithm, kid, iss, aud, exp and iat; raises TokenInvalid."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise TokenInvalid() from exc
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        raise TokenInvalid()
    ring = keyring()
    memo_key = (raw, str(settings.JWT_ISSUER), str(settings.JWT_AUDIENCE), ring.algorithm)
    seen = _VERIFIED.get(memo_key)
    if seen is not None and seen[0] in ring.verifying():
        _clock_check(seen[1])
        return seen[1]
    kid, claims = _access_token_verify(raw, ring)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[memo_key] = (kid, claims)
    return claims


def _access_token_verify(raw: str, ring: KeyRing) -> tuple[str, AccessClaims]:
    try:
        header = jwt.get_unverified_header(raw)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenInvalid() from exc
    if header.get("alg") != ring.algorithm or header.get("typ") != ACCESS_TOKEN_TYPE:
        raise TokenInvalid()
    kid = header.get("kid")
    key = ring.verifying().get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenInvalid()
    try:
        claims = jwt.decode(
            raw,
            key,
            algorithms=[ring.algorithm],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={"require": list(CLAIMS), "verify_signature": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenInvalid("The access token has expired.", code="token_expired") from exc
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenInvalid() from exc
    sub, sid, jti, amr = claims.get("sub"), claims.get("sid"), claims.get("jti"), claims.get("amr")
    if not (isinstance(sub, str) and isinstance(sid, str) and isinstance(jti, str)):
        raise TokenInvalid()
    if not (isinstance(amr, list) and all(isinstance(item, str) for item in amr)):
        raise TokenInvalid()
    try:
        uuid.UUID(sub)
        uuid.UUID(sid)
    except ValueError as exc:
        raise TokenInvalid() from exc
    iat, exp = claims.get("iat"), claims.get("exp")
    if not (isinstance(iat, int) and isinstance(exp, int)):
        raise TokenInvalid()
    if iat > int(timezone.now().timestamp()) + int(settings.JWT_LEEWAY_SECONDS):
        raise TokenInvalid()  # issued in the future: not yet valid
    auth_time = claims.get("auth_time")
    if auth_time is not None and not isinstance(auth_time, int):
        raise TokenInvalid()
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else ""
    if cnf is not None and not (isinstance(jkt, str) and jkt):
        raise TokenInvalid()
    return str(kid), AccessClaims(
        sub=sub, sid=sid, jti=jti, amr=amr, iat=iat, exp=exp, auth_time=auth_time, jkt=jkt or ""
    )


# --- Refresh tokens (opaque) ------------------------------------------------------------------


def refresh_token_new() -> str:
    return secrets.token_urlsafe(48)


def refresh_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
