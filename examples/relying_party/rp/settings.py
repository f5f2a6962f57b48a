"""Settings of the demo relying party: everything from the environment, nothing from the portal.

One code base serves every demo client: `make run` starts it as "Mortgage app" on :8001 and as
"Reporting tool" on :8002, each with its own environment (usually a git-ignored env file written
when the portal seeds the demo clients, see `RP_ENV_FILE`).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Variables already in the environment win over the file's.
if os.environ.get("RP_ENV_FILE"):
    environ.Env.read_env(os.environ["RP_ENV_FILE"], overwrite=False)

# Where the relying party lives (the provider sends users back to RP_BASE_URL/oidc/callback/).
RP_BASE_URL = env.str("RP_BASE_URL", default="http://127.0.0.1:8001").rstrip("/")
RP_NAME = env.str("RP_NAME", default="Mortgage app")

# The OpenID provider and this client's registration at it.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="http://127.0.0.1:8000").rstrip("/")
OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
# Empty for a public client (PKCE alone); a confidential client authenticates with HTTP Basic.
OIDC_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_SCOPES = env.str("OIDC_SCOPES", default="openid email")
OIDC_ACR_MFA = "urn:bank-portal:acr:mfa"
# Where the provider sends the browser after RP-initiated logout (registered with the client).
OIDC_POST_LOGOUT_REDIRECT_URI = env.str("OIDC_POST_LOGOUT_REDIRECT_URI", default=f"{RP_BASE_URL}/")
OIDC_HTTP_TIMEOUT_SECONDS = env.float("OIDC_HTTP_TIMEOUT_SECONDS", default=10.0)
# Clock skew tolerated on exp / iat of the provider's tokens.
OIDC_LEEWAY_SECONDS = env.int("OIDC_LEEWAY_SECONDS", default=30)
# Shortest interval between two JWKS refetches for a kid the cached key set does not know.
OIDC_JWKS_REFRESH_SECONDS = env.int("OIDC_JWKS_REFRESH_SECONDS", default=60)
# How long a logout token's jti is remembered when the token carries no exp.
OIDC_LOGOUT_JTI_RETENTION_SECONDS = env.int("OIDC_LOGOUT_JTI_RETENTION_SECONDS", default=86_400)

_base = urlsplit(RP_BASE_URL)
_port = _base.port or (443 if _base.scheme == "https" else 80)
_secure = _base.scheme == "https"

DEBUG = env.bool("RP_DEBUG", default=False)
# A random key per process when none is given: the demo keeps no signed data across restarts.
SECRET_KEY = env.str("RP_SECRET_KEY", default="") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = [_base.hostname or "127.0.0.1"]
CSRF_TRUSTED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]

INSTALLED_APPS = [
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "rp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "rp.middleware.security_headers",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "rp.urls"
WSGI_APPLICATION = "rp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csrf",
                "rp.views.site",
            ]
        },
    }
]

# One SQLite file per instance (sessions, sign-ins, seen logout tokens): two demo clients on one
# machine never share their sessions.
_database = Path(env.str("RP_DATABASE_PATH", default=str(BASE_DIR / "var" / f"rp-{_port}.sqlite3")))
_database.parent.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_database)}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Server-side sessions: a back-channel logout deletes the row and the browser's cookie stops
# meaning anything at once. Cookies are named per instance because browsers share cookies
# between ports of one host (the portal on :8000, the demo clients on :8001 and :8002).
_cookie_prefix = env.str("RP_COOKIE_PREFIX", default="") or re.sub(r"[^a-z0-9]", "", f"rp{_port}")
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = f"{_cookie_prefix}_session"
SESSION_COOKIE_HTTPONLY = True
# Lax, not Strict: the provider's redirect back to /oidc/callback/ is a cross-site navigation in a
# real deployment and must carry the session that holds the state, nonce and PKCE verifier.
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _secure
SESSION_COOKIE_AGE = env.int("RP_SESSION_SECONDS", default=8 * 3600)
CSRF_COOKIE_NAME = f"{_cookie_prefix}_csrftoken"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = _secure
CSRF_COOKIE_SAMESITE = "Lax"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

STATIC_URL = "/static/"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("RP_LOG_LEVEL", default="INFO")},
}
