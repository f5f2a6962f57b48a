"""Production. Every secret comes from the environment; there are no defaults for them."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import JWT_PREVIOUS_SIGNING_KEYS, JWT_PRIVATE_KEY, JWT_PRIVATE_KEY_FILE, JWT_SIGNING_KEY, env

_REQUIRED = [
    "DJANGO_SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
]
_missing = [name for name in _REQUIRED if not env.str(name, default="")]
if _missing:
    raise ImproperlyConfigured(f"prod settings need these environment variables: {', '.join(_missing)}")

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 characters")

DEBUG = False
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.int("TRUSTED_PROXY_COUNT", default=0) else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=63072000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# ASVS 3.4.4: the __Host- prefix makes browsers accept these cookies only when Secure, host-only
# (no Domain attribute) and Path=/, so a sibling subdomain cannot set or overwrite them.
SESSION_COOKIE_NAME = "__Host-bp_session"
CSRF_COOKIE_NAME = "__Host-bp_csrftoken"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[env.str("PUBLIC_BASE_URL")])

# JWT signing key: required, and it must be an RSA private key (RS256: the provider's tokens, and
# the mobile API's unless JWT_SIGNING_KEY makes those HS512, checked below).
JWT_KEY_FALLBACK = "refuse"
_jwt_pem = JWT_PRIVATE_KEY
if not _jwt_pem and JWT_PRIVATE_KEY_FILE:
    try:
        _jwt_pem = Path(JWT_PRIVATE_KEY_FILE).read_text()
    except OSError as _exc:
        raise ImproperlyConfigured(f"JWT_PRIVATE_KEY_FILE cannot be read: {_exc}") from _exc
if not _jwt_pem:
    raise ImproperlyConfigured("prod settings need JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE (an RSA private key, PEM)")
try:
    from cryptography.hazmat.primitives.asymmetric import rsa as _rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key as _load_pem

    if not isinstance(_load_pem(_jwt_pem.encode(), password=None), _rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
except (ValueError, TypeError) as _exc:
    raise ImproperlyConfigured(f"the JWT private key is not a usable RSA private key: {_exc}") from _exc

# HS512 mobile tokens (JWT_SIGNING_KEY): a short key, previous keys without a current one, or the
# Django secret key reused for tokens stop the start here, not at the first login.
from accounts.tokens import hmac_keys as _hmac_keys  # noqa: E402

_hmac_keys(JWT_SIGNING_KEY, JWT_PREVIOUS_SIGNING_KEYS)
if JWT_SIGNING_KEY and JWT_SIGNING_KEY == SECRET_KEY:
    raise ImproperlyConfigured("JWT_SIGNING_KEY must not be DJANGO_SECRET_KEY: one key per purpose")
