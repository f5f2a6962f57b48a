"""Settings shared by every environment.

Each environment module (dev, test, prod) imports this one and overrides what differs.
Every environment variable named in shared/API.md is read here, so every settings
module honours it when it is set.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
from django.utils.functional import lazy as _lazy

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# --- Core -----------------------------------------------------------------------------

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = False
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
# Links in emails are built from this, never from the request's Host header.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Client IP comes from REMOTE_ADDR unless this many trusted proxies append to X-Forwarded-For.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Key for encrypting secrets at rest (TOTP seeds, outbox bodies). Derived from SECRET_KEY if unset.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

INSTALLED_APPS = [
    "mfa.admin_apps.StrongFactorAdminConfig",  # django.contrib.admin, behind a strong second factor
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "core",
    "audit",
    "notifications",
    "accounts",
    "mfa",
    "payments",
    "risk",
    "oauth2_provider",
    "idp",
]

MIDDLEWARE = [
    "core.metrics.MetricsMiddleware",  # first: times every request; serves METRICS_PATH to the allowed only
    "core.middleware.RequestContextMiddleware",
    "core.failsafe.FailSafeMiddleware",  # Redis/PostgreSQL unreachable in a view -> 503
    "core.middleware.DomainErrorMiddleware",  # a service's refusal out of a view -> its error page
    "risk.middleware.RiskMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    # config.stack: the web-only middleware below pass API_LEAN_PATH_PREFIX requests straight through.
    "config.stack.CSPMiddleware",  # django-csp for pages; a fixed strict policy for the API's JSON
    "config.stack.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # stock (checks look for it); DRF's views are csrf_exempt
    "config.stack.AuthenticationMiddleware",
    "config.stack.SessionRegistryMiddleware",
    "config.stack.OTPMiddleware",
    "config.stack.PendingLoginMiddleware",
    "config.stack.MessageMiddleware",
    "config.stack.PasswordChangeRequiredMiddleware",  # session flag password_change_required
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The bearer-token JSON API: no session, CSRF, cookie auth, messages or page redirects (config/stack.py).
API_LEAN_PATH_PREFIX = "/api/v1/"
# The provider's endpoints that clients call with their own credentials, never a browser's cookies:
# the same lean stack (no session, cookie auth, OTP, pending login, messages; the strict JSON CSP).
API_LEAN_PATHS = ("/o/token/", "/o/par/", "/o/revoke/", "/o/introspect/")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "core.context_processors.portal",
            ],
        },
    },
]

# --- Data stores ----------------------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/bank_portal"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PgBouncer in transaction mode between Django and PostgreSQL (docs/operations/scaling.md): no
# server-side cursors (`.iterator()` would open one in a transaction PgBouncer may not keep) and
# no server-side prepared statements (psycopg prepares a query after 5 runs; PgBouncer before
# 1.21 cannot route them). Nothing in the portal relies on session state: advisory locks are
# transaction-scoped (pg_try_advisory_xact_lock), no SET, LISTEN or temporary tables.
PGBOUNCER_TRANSACTION_MODE = env.bool("PGBOUNCER_TRANSACTION_MODE", default=False)
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DISABLE_SERVER_SIDE_CURSORS", default=PGBOUNCER_TRANSACTION_MODE
)
if PGBOUNCER_TRANSACTION_MODE:
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
# A read replica for the security reports (core/db_router.py), off unless DATABASE_REPLICA_URL is set.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
REPORTS_REPLICA_ALIAS = ""
DATABASE_ROUTERS: list[str] = []
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **env.db_url_config(DATABASE_REPLICA_URL),
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},
    }
    REPORTS_REPLICA_ALIAS = "replica"
    DATABASE_ROUTERS = ["core.db_router.ReportsReplicaRouter"]
# Django's PostgreSQL backend with a health check that polls the socket instead of sending SELECT 1
# to a connection that is idle and has nothing to read (core/postgresql/base.py).
for _database in DATABASES.values():
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _database["ENGINE"] = "core.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        # Django's Redis backend, reusing one redis-py client per pool (core/cache.py).
        "BACKEND": "core.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="bp"),
        "TIMEOUT": 300,
    },
}
# Managed Redis or Sentinel (docs/operations/scaling.md): bounded waits, so a Redis that stops
# answering turns into a 503 (core.failsafe) instead of hung workers; TLS with a rediss:// URL.
CACHES["default"]["OPTIONS"] = {
    "socket_timeout": env.float("REDIS_SOCKET_TIMEOUT", default=5.0),
    "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", default=2.0),
    "health_check_interval": env.int("REDIS_HEALTH_CHECK_INTERVAL", default=30),
}
# Redis Sentinel: the Sentinels (host:port,...) and the service they watch; REDIS_URL then keeps the
# password and database only (core/redis_sentinel.py). Celery follows unless CELERY_BROKER_URL is set.
REDIS_SENTINELS = env.str("REDIS_SENTINELS", default="")
REDIS_SENTINEL_SERVICE = env.str("REDIS_SENTINEL_SERVICE", default="mymaster")
REDIS_SENTINEL_PASSWORD = env.str("REDIS_SENTINEL_PASSWORD", default="")
if REDIS_SENTINELS:
    CACHES["default"]["OPTIONS"]["pool_class"] = "core.redis_sentinel.SentinelPool"

# A live sid confirmed by the session registry is trusted from Redis this long (accounts/revocation.py):
# the most a revocation lost with a Redis failover can go unnoticed; also one registry read per sid per period.
REVOCATION_LIVE_CACHE_SECONDS = env.int("REVOCATION_LIVE_CACHE_SECONDS", default=30)

# --- Metrics (core/metrics.py) --------------------------------------------------------------

METRICS_PATH = env.str("METRICS_PATH", default="/metrics")
# Who may scrape: these networks (as seen through TRUSTED_PROXY_COUNT), or a bearer token.
METRICS_ALLOWED_CIDRS = env.str("METRICS_ALLOWED_CIDRS", default="127.0.0.1/32,::1/128")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Authentication -------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.EmailBackend",
]
LOGIN_URL = "accounts:login"
# The login pipeline (accounts/pipeline.py): the stages every login runs, in order, after the password.
# Each is a dotted path to an accounts.pipeline.Stage; the apps that own the steps provide them.
LOGIN_STAGES = [
    "accounts.stages.BreachedPasswordStage",
    "risk.stages.RiskStage",
    "mfa.stages.SecondFactorStage",
    "mfa.stages.EnrolRequiredStage",
]
# A web login whose `next` is one of these paths is the identity provider's ("oidc" channel, audited so).
LOGIN_OIDC_NEXT_PREFIXES = ["/o/authorize/"]
# What GET /api/v1/me adds to the user's id and email: functions(user=) -> dict, from the apps that own them.
ACCOUNT_ME_FIELDS = ["mfa.selectors.me_fields"]
# The re-authentication page (a step of its own: password or a second factor); accounts.authn.reauth_url.
REAUTH_URL = "mfa:reauth"
LOGIN_REDIRECT_URL = "payments:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# argon2id m=7 MiB, t=5, p=1: of OWASP's equivalent sets (46/1, 19/2, 12/3, 9/4, 7/5) the one that
# verifies fastest with many logins at once on a small machine (bench/README.md, "argon2 parameters").
ARGON2_TIME_COST = env.int("ARGON2_TIME_COST", default=5)
ARGON2_MEMORY_COST_KIB = env.int("ARGON2_MEMORY_COST_KIB", default=7 * 1024)
ARGON2_PARALLELISM = env.int("ARGON2_PARALLELISM", default=1)
PASSWORD_HASHERS = [
    "accounts.hashers.ConfigurableArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    # OAuth client secrets generated by the provider (idp.hashers; CLIENT_SECRET_HASHER below).
    "idp.hashers.KeyedSecretHasher",
]
PASSWORD_MIN_LENGTH = env.int("PASSWORD_MIN_LENGTH", default=12)
PASSWORD_MAX_LENGTH = env.int("PASSWORD_MAX_LENGTH", default=128)
# zxcvbn score (0-4) a new password needs, on the server (validator) and in the browser (meter).
PASSWORD_MIN_STRENGTH = env.int("PASSWORD_MIN_STRENGTH", default=3)
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "full_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {
        "NAME": "accounts.validators.MaximumLengthValidator",
        "OPTIONS": {"max_length": PASSWORD_MAX_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    # Issue 16: breached passwords (offline list, optional range API) and zxcvbn strength.
    {"NAME": "accounts.validators.BreachedPasswordValidator"},
    {"NAME": "accounts.validators.StrengthValidator", "OPTIONS": {"min_score": PASSWORD_MIN_STRENGTH}},
]
# The sorted SHA-1 prefix file of breached passwords (manage.py import_breached_passwords FILE);
# unset: the small list shipped in accounts/data/ (Django's 20,000 common passwords and variants).
BREACHED_PASSWORDS_FILE = env.str(
    "BREACHED_PASSWORDS_FILE", default=str(BASE_DIR / "accounts" / "data" / "breached-passwords.bin")
)
# Also ask the Pwned Passwords range API (k-anonymity: 5 hex characters of the SHA-1 leave, padded).
# Off by default; on an error or after the timeout the offline list decides (fail open to offline).
BREACHED_PASSWORDS_ONLINE = env.bool("BREACHED_PASSWORDS_ONLINE", default=False)
BREACHED_PASSWORDS_API_URL = env.str("BREACHED_PASSWORDS_API_URL", default="https://api.pwnedpasswords.com/range/")
BREACHED_PASSWORDS_API_TIMEOUT = env.float("BREACHED_PASSWORDS_API_TIMEOUT", default=1.0)
BREACHED_PASSWORDS_API_PADDING = True
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
EMAIL_VERIFICATION_MAX_AGE = env.int("EMAIL_VERIFICATION_MAX_AGE", default=48 * 60 * 60)

# --- Web sessions ---------------------------------------------------------------------

SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_CACHE_ALIAS = "default"
SESSION_COOKIE_NAME = "bp_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_SAMESITE = "Strict"
# Idle timeout: the cookie and the stored session expire this long after the last request.
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Absolute lifetime of a login, whatever the activity.
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_TIMEOUT", default=12 * 60 * 60)
# Live web sessions a user may hold; a new login ends the oldest beyond it.
SESSION_CONCURRENT_LIMIT = env.int("SESSION_CONCURRENT_LIMIT", default=1)
# How often a live session's "last seen" is written to PostgreSQL and checked against it.
SESSION_TOUCH_INTERVAL = env.int("SESSION_TOUCH_INTERVAL", default=60)

CSRF_COOKIE_NAME = "bp_csrftoken"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_FAILURE_VIEW = "core.views.csrf_failure"

# --- Brute-force defence --------------------------------------------------------------

AXES_ENABLED = True
# Lockout counters in Redis (DESIGN.md), with the cool-off on the application clock: accounts/lockout.py.
AXES_HANDLER = "accounts.lockout.ClockedAxesCacheHandler"
AXES_CACHE = "default"
AXES_FAILURE_LIMIT = env.int("LOCKOUT_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "core.net.client_ip"
AXES_USERNAME_CALLABLE = "accounts.backends.axes_username"
AXES_VERBOSE = False
AXES_DISABLE_ACCESS_LOG = True

# Per-IP limits (django-ratelimit syntax), declared once by name.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_ENABLE = True
RATE_LIMITS = {
    "login_ip": env.str("RATE_LIMIT_LOGIN_IP", default="30/m"),
    "signup_ip": env.str("RATE_LIMIT_SIGNUP_IP", default="10/h"),
    "password_reset_ip": env.str("RATE_LIMIT_PASSWORD_RESET_IP", default="10/h"),
    "data_export_ip": env.str("RATE_LIMIT_DATA_EXPORT_IP", default="5/h"),
}
# Proof-of-work CAPTCHA (ALTCHA) after this many failures for the account or the IP.
CAPTCHA_AFTER_FAILURES = env.int("CAPTCHA_AFTER_FAILURES", default=3)
CAPTCHA_MAX_NUMBER = env.int("CAPTCHA_MAX_NUMBER", default=50_000)
CAPTCHA_TTL_SECONDS = env.int("CAPTCHA_TTL_SECONDS", default=600)
# Failures are counted per account and per IP over this window.
FAILURE_WINDOW_SECONDS = env.int("FAILURE_WINDOW_SECONDS", default=15 * 60)

# --- Email, SMS, Celery ----------------------------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Bank Portal <no-reply@bank-portal.example>")

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_TIMEOUT_SECONDS = env.int("TWILIO_TIMEOUT_SECONDS", default=10)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
if REDIS_SENTINELS and not env.str("CELERY_BROKER_URL", default=""):
    from urllib.parse import urlsplit as _urlsplit

    _redis = _urlsplit(REDIS_URL)
    _auth = f":{_redis.password}@" if _redis.password else ""
    CELERY_BROKER_URL = ";".join(
        f"sentinel://{_auth}{addr.strip()}{_redis.path}" for addr in REDIS_SENTINELS.split(",")
    )
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_SERVICE
    if REDIS_SENTINEL_PASSWORD:
        CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"password": REDIS_SENTINEL_PASSWORD}
CELERY_BEAT_SCHEDULE = {
    "outbox-resend-pending": {
        "task": "notifications.tasks.outbox_resend_pending",
        "schedule": 60.0,
    },
    "audit-seal": {"task": "audit.tasks.audit_seal", "schedule": 60.0},
    "audit-verify": {"task": "audit.tasks.audit_verify", "schedule": 3600.0},
    "audit-verify-full": {"task": "audit.tasks.audit_verify_full", "schedule": 24 * 3600.0},
    "audit-partitions-ensure": {"task": "audit.tasks.audit_partitions_ensure", "schedule": 24 * 3600.0},
    "payments-expire-pending": {
        "task": "payments.tasks.payments_expire_pending",
        "schedule": 60.0,
    },
    "risk-prune-known-devices": {"task": "risk.tasks.known_devices_prune", "schedule": 24 * 3600.0},
}
# Outbox delivery: attempts before a message is marked failed, and backoff base.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_BACKOFF_SECONDS = env.int("OUTBOX_BACKOFF_SECONDS", default=15)
# Webhook messages of the outbox (back-channel logout): how long one POST may take.
WEBHOOK_TIMEOUT_SECONDS = env.int("WEBHOOK_TIMEOUT_SECONDS", default=5)

# --- HTTP security headers ------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), publickey-credentials-get=(self), "
    "publickey-credentials-create=(self)"
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# --- i18n, static ---------------------------------------------------------------------

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Logging --------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "core.logging.RequestContextFilter"},
        "redact": {"()": "core.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

SILENCED_SYSTEM_CHECKS = [
    # Lockouts are turned into responses by our own login service, not axes' middleware.
    "axes.W002",
]

# --- Banking --------------------------------------------------------------------------

BANK_NAME = env.str("BANK_NAME", default="Bank Portal")
STEP_UP_THRESHOLD = Decimal(env.str("STEP_UP_THRESHOLD", default="10000.00"))
# Payments (issue 6): per-account daily limit (completed + pending payments of the UTC day),
# the step-up window and attempts, and what makes a payment "unusual" (needs step-up too).
PAYMENT_DAILY_LIMIT = Decimal(env.str("PAYMENT_DAILY_LIMIT", default="50000.00"))
PAYMENT_STEP_UP_TTL_SECONDS = env.int("PAYMENT_STEP_UP_TTL_SECONDS", default=300)
PAYMENT_STEP_UP_MAX_ATTEMPTS = env.int("PAYMENT_STEP_UP_MAX_ATTEMPTS", default=3)
PAYMENT_UNUSUAL_FACTOR = Decimal(env.str("PAYMENT_UNUSUAL_FACTOR", default="5"))
PAYMENT_UNUSUAL_MIN_HISTORY = env.int("PAYMENT_UNUSUAL_MIN_HISTORY", default=3)
PAYMENT_NEW_BENEFICIARY_HOURS = env.int("PAYMENT_NEW_BENEFICIARY_HOURS", default=24)
# Idempotency keys (API) and one-time form tokens (web) are remembered this long, then pruned.
PAYMENT_IDEMPOTENCY_KEY_HOURS = env.int("PAYMENT_IDEMPOTENCY_KEY_HOURS", default=24)
# Payments to other banks credit one of this many clearing sub-accounts per currency (chosen by the
# payment's id), each locked only for the posting at the end: no single hot row (a lower value later
# leaves the higher sub-accounts idle, still summed by the reports).
PAYMENT_CLEARING_SHARDS = env.int("PAYMENT_CLEARING_SHARDS", default=8)

# --- Passkeys (WebAuthn) and JWT: read here so every settings module honours them -----

WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default="localhost")
WEBAUTHN_RP_NAME = env.str("WEBAUTHN_RP_NAME", default=BANK_NAME)
WEBAUTHN_ORIGIN = env.str("WEBAUTHN_ORIGIN", default="http://localhost:8000")

JWT_PRIVATE_KEY = env.str("JWT_PRIVATE_KEY", default="", multiline=True)
JWT_PRIVATE_KEY_FILE = env.str("JWT_PRIVATE_KEY_FILE", default="")
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="")
JWT_ISSUER = env.str("JWT_ISSUER", default="bank-portal")
JWT_AUDIENCE = env.str("JWT_AUDIENCE", default="bank-portal-mobile")
BANK_IBAN_COUNTRY = env.str("BANK_IBAN_COUNTRY", default="NL")
BANK_CODE = env.str("BANK_CODE", default="BKPT")
BANK_ACCOUNT_NUMBER_DIGITS = 10

# --- Risk: known devices, geolocation, risk-based login, alerts (risk/) ---------------------

# Optional MaxMind GeoLite2/GeoIP2 City file; unset -> the embedded country-level geoip2fast data.
GEOIP_CITY_DB_PATH = env.str("GEOIP_CITY_DB_PATH", default="")
RISK_ENABLED = env.bool("RISK_ENABLED", default=True)
RISK_DEVICE_COOKIE_NAME = env.str("RISK_DEVICE_COOKIE_NAME", default="bp_device")
RISK_DEVICE_COOKIE_AGE_DAYS = env.int("RISK_DEVICE_COOKIE_AGE_DAYS", default=400)
RISK_DEVICE_COOKIE_SAMESITE = env.str("RISK_DEVICE_COOKIE_SAMESITE", default="Lax")
RISK_DEVICE_COOKIE_SECURE = env.bool("RISK_DEVICE_COOKIE_SECURE", default=True)
# Speed (km/h) between the last successful login's place and this one above which travel is impossible,
# and the distance below which it is never flagged (country centroids are coarse).
RISK_IMPOSSIBLE_TRAVEL_KMH = env.int("RISK_IMPOSSIBLE_TRAVEL_KMH", default=900)
RISK_IMPOSSIBLE_TRAVEL_MIN_KM = env.int("RISK_IMPOSSIBLE_TRAVEL_MIN_KM", default=300)
# Distinct accounts failing a password from one IP (FAILURE_WINDOW_SECONDS) that make it suspicious.
RISK_IP_FAILING_ACCOUNTS = env.int("RISK_IP_FAILING_ACCOUNTS", default=5)
# Geo-fencing: ISO 3166 alpha-2 codes from which no login is accepted.
RISK_BLOCKED_COUNTRIES: list[str] = [c.upper() for c in env.list("RISK_BLOCKED_COUNTRIES", default=[])]
# What each signal leads to: "allow" (alert only), "mfa" (a second factor) or "deny".
RISK_POLICY = {
    "new_device": env.str("RISK_POLICY_NEW_DEVICE", default="allow"),
    "new_country": env.str("RISK_POLICY_NEW_COUNTRY", default="mfa"),
    "impossible_travel": env.str("RISK_POLICY_IMPOSSIBLE_TRAVEL", default="mfa"),
    "ip_failing_many_accounts": env.str("RISK_POLICY_IP_FAILING_MANY_ACCOUNTS", default="mfa"),
    "geo_blocked": env.str("RISK_POLICY_GEO_BLOCKED", default="deny"),
}
# Two or more signals together lead at least to this action.
RISK_MULTIPLE_SIGNALS_ACTION = env.str("RISK_MULTIPLE_SIGNALS_ACTION", default="mfa")
# "Remember this device" after a second-factor login.
RISK_DEVICE_TRUST_DAYS = env.int("RISK_DEVICE_TRUST_DAYS", default=30)
# A risky login of a user without a second factor: a code emailed to the verified address.
RISK_LOGIN_CODE_TTL_SECONDS = env.int("RISK_LOGIN_CODE_TTL_SECONDS", default=5 * 60)
RISK_LOGIN_CODE_MAX_ATTEMPTS = env.int("RISK_LOGIN_CODE_MAX_ATTEMPTS", default=3)
RISK_LOGIN_CODE_HOURLY_CAP = env.int("RISK_LOGIN_CODE_HOURLY_CAP", default=5)
# Lifetime of the "this wasn't me" link in alert emails.
RISK_NOT_ME_LINK_MAX_AGE = env.int("RISK_NOT_ME_LINK_MAX_AGE", default=7 * 24 * 60 * 60)

# --- Second factors (mfa) and re-authentication ------------------------------------------

# Out-of-band codes (SMS, email): lifetime, resend cooldown, per-user hourly cap.
MFA_CODE_TTL_SECONDS = env.int("MFA_CODE_TTL_SECONDS", default=5 * 60)
MFA_CODE_RESEND_COOLDOWN_SECONDS = env.int("MFA_CODE_RESEND_COOLDOWN_SECONDS", default=30)
MFA_CODE_HOURLY_CAP = env.int("MFA_CODE_HOURLY_CAP", default=10)
# A code still undelivered this long after sending is shown as "may arrive late".
MFA_CODE_LATE_AFTER_SECONDS = env.int("MFA_CODE_LATE_AFTER_SECONDS", default=20)
# Wrong codes that void one challenge; consecutive wrong codes (any method) that lock MFA.
MFA_CHALLENGE_MAX_ATTEMPTS = env.int("MFA_CHALLENGE_MAX_ATTEMPTS", default=3)
MFA_LOCK_AFTER_FAILURES = env.int("MFA_LOCK_AFTER_FAILURES", default=5)
MFA_LOCK_MINUTES = env.int("MFA_LOCK_MINUTES", default=15)
MFA_TOTP_TOLERANCE_STEPS = env.int("MFA_TOTP_TOLERANCE_STEPS", default=1)
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default=BANK_NAME)
MFA_RECOVERY_CODE_COUNT = env.int("MFA_RECOVERY_CODE_COUNT", default=10)
# A password-verified login waits this long for its second factor.
MFA_PENDING_LOGIN_SECONDS = env.int("MFA_PENDING_LOGIN_SECONDS", default=10 * 60)
# How long a login attempt may wait for its next step (web); the API's mfa_token has API_MFA_TOKEN_TTL_SECONDS.
LOGIN_ATTEMPT_TTL_SECONDS = MFA_PENDING_LOGIN_SECONDS
WEBAUTHN_CHALLENGE_TTL_SECONDS = env.int("WEBAUTHN_CHALLENGE_TTL_SECONDS", default=5 * 60)
# Policy: staff and these groups must have a second factor and may only use these methods.
MFA_REQUIRED_GROUPS: list[str] = env.list("MFA_REQUIRED_GROUPS", default=["security"])
MFA_STRONG_METHODS: list[str] = env.list("MFA_STRONG_METHODS", default=["totp", "webauthn"])
# Customers without a factor are invited (not forced) to enrol after login.
MFA_PROMPT_CUSTOMERS = env.bool("MFA_PROMPT_CUSTOMERS", default=True)
# "Sudo mode": password or a factor proven within this many seconds before sensitive changes.
REAUTH_MAX_AGE_SECONDS = env.int("REAUTH_MAX_AGE_SECONDS", default=5 * 60)
# A customer with no enrolled factor may confirm a step-up (payment, payee) with a code sent to the
# verified email address. PSD2 deployments switch it off (docs/security/psd2-rts.md); staff and the
# security group never get it.
STEP_UP_EMAIL_FALLBACK = env.bool("STEP_UP_EMAIL_FALLBACK", default=True)

# --- Audit log, reports and staff actions (issue 7) -----------------------------------

# Events are sealed into the hash chain once they are this old (slow commits settle first).
AUDIT_SEAL_SETTLE_SECONDS = env.int("AUDIT_SEAL_SETTLE_SECONDS", default=30)
AUDIT_SEAL_BATCH_SIZE = env.int("AUDIT_SEAL_BATCH_SIZE", default=5000)
# PostgreSQL: the audit log is partitioned by month (audit/partitions.py); partitions are
# created this many months ahead (at migrate time and by a daily beat task).
AUDIT_PARTITION_MONTHS_AHEAD = env.int("AUDIT_PARTITION_MONTHS_AHEAD", default=3)
# Reports: default time range, page size of the audit API, the "IP failing across many
# accounts" threshold of the suspicious-activity view.
REPORTS_DEFAULT_HOURS = env.int("REPORTS_DEFAULT_HOURS", default=24)
AUDIT_API_PAGE_SIZE = env.int("AUDIT_API_PAGE_SIZE", default=100)
REPORTS_IP_MANY_ACCOUNTS = env.int("REPORTS_IP_MANY_ACCOUNTS", default=5)

# --- JSON API: DRF, JWT for the mobile app, OpenAPI (accounts/api, accounts/tokens.py) -------

JWT_ACCESS_LIFETIME_SECONDS = env.int("JWT_ACCESS_LIFETIME_SECONDS", default=15 * 60)
JWT_REFRESH_LIFETIME_SECONDS = env.int("JWT_REFRESH_LIFETIME_SECONDS", default=7 * 24 * 60 * 60)
# Each refresh slides the 7 days; no app login outlives this, however active.
JWT_REFRESH_ABSOLUTE_SECONDS = env.int("JWT_REFRESH_ABSOLUTE_SECONDS", default=30 * 24 * 60 * 60)
# Clock skew tolerated on exp/iat. The algorithm is fixed here, never read from a token: RS256,
# or HS512 when JWT_SIGNING_KEY (at least 64 bytes) is set (accounts.tokens).
JWT_LEEWAY_SECONDS = env.int("JWT_LEEWAY_SECONDS", default=10)
# For simplejwt's settings only: accounts.tokens decides from the key ring (a signing key: HS512).
JWT_ALGORITHM = "HS512" if JWT_SIGNING_KEY else "RS256"
# HS512 key rotation: previous signing keys (whitespace-separated), still accepted until their last
# access token has expired; never published.
JWT_PREVIOUS_SIGNING_KEYS = env.str("JWT_PREVIOUS_SIGNING_KEYS", default="")
# Key rotation: PEM public keys of previous signing keys, still accepted and published in the JWKS
# until their last access token has expired (concatenated PEMs, or a file holding them).
JWT_PREVIOUS_PUBLIC_KEYS = env.str("JWT_PREVIOUS_PUBLIC_KEYS", default="", multiline=True)
JWT_PREVIOUS_PUBLIC_KEYS_FILE = env.str("JWT_PREVIOUS_PUBLIC_KEYS_FILE", default="")
# Without JWT_PRIVATE_KEY(_FILE): "refuse" (prod), "file" (dev: generated once, kept in
# JWT_DEV_KEY_FILE) or "generate" (test: a fresh key per process).
JWT_KEY_FALLBACK = env.str("JWT_KEY_FALLBACK", default="refuse")
JWT_DEV_KEY_FILE = env.str("JWT_DEV_KEY_FILE", default=str(BASE_DIR / "secrets" / "jwt-dev-key.pem"))
# The pending login between the password and the second factor in the API (mfa_token).
API_MFA_TOKEN_TTL_SECONDS = env.int("API_MFA_TOKEN_TTL_SECONDS", default=5 * 60)
API_MFA_TOKEN_MAX_ATTEMPTS = env.int("API_MFA_TOKEN_MAX_ATTEMPTS", default=5)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=JWT_ACCESS_LIFETIME_SECONDS),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=JWT_REFRESH_LIFETIME_SECONDS),
    "ALGORITHM": JWT_ALGORITHM,
    "ISSUER": JWT_ISSUER,
    "AUDIENCE": JWT_AUDIENCE,
    "LEEWAY": JWT_LEEWAY_SECONDS,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "public_id",
    "USER_ID_CLAIM": "sub",
    "JTI_CLAIM": "jti",
    "UPDATE_LAST_LOGIN": False,
}

REST_FRAMEWORK = {
    # The provider's class first: it claims only tokens carrying `client_id` (idp.authentication)
    # and passes every other token on to the mobile one.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "idp.authentication.ProviderTokenAuthentication",
        "accounts.api.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.ORJSONRenderer"],  # DRF's JSON, on orjson
    # DRF's negotiation, answered at once for no Accept / */* / application/json (core/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.JSONFirstNegotiation",
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Throttles count in the default cache (Redis), per client IP (core.net.client_ip) or user.
    "DEFAULT_THROTTLE_RATES": {
        "auth_login": env.str("API_THROTTLE_LOGIN", default="10/min"),
        "auth_mfa": env.str("API_THROTTLE_MFA", default="10/min"),
        "auth_refresh": env.str("API_THROTTLE_REFRESH", default="30/min"),
        "auth_logout": env.str("API_THROTTLE_LOGOUT", default="30/min"),
        "auth_user": env.str("API_THROTTLE_USER", default="120/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": f"{BANK_NAME} API",
    "DESCRIPTION": (
        "JSON API for the mobile app and the security team. Bearer access tokens (RS256 JWT, "
        "15 minutes) from POST /api/v1/auth/login; public keys at /.well-known/jwks.json. "
        'Every error is {"detail", "code"} (400 adds "errors" per field).'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "MfaMethodEnum": "accounts.api.serializers.API_MFA_METHODS",
        "CodeChannelEnum": "accounts.api.serializers.CODE_CHANNELS",
        "MfaChallengeMethodEnum": "accounts.api.serializers.CHALLENGE_METHODS",
        "CodeConfirmMethodEnum": "payments.services.CODE_CONFIRM_METHODS",
    },
}

# --- Strong customer authentication: the PSD2 profile and the RTS exemptions (issue 16) ----
# SECURITY_PROFILE=psd2 is the one switch of a PSD2 deployment (docs/security/psd2-rts.md): SCA
# on every remote payment unless an exemption of payments/sca.py applies, at most 5 minutes of
# inactivity (web session and app refresh token), at most 5 failed attempts (password lockout
# and second factor), no email fallback for step-up. The default profile keeps the threshold.
SECURITY_PROFILE = env.str("SECURITY_PROFILE", default="default").strip().lower()
if SECURITY_PROFILE not in ("default", "psd2"):
    raise ValueError('SECURITY_PROFILE must be "default" or "psd2"')
PSD2_IDLE_SECONDS = 5 * 60
PSD2_MAX_FAILED_ATTEMPTS = 5
if SECURITY_PROFILE == "psd2":
    SESSION_IDLE_TIMEOUT = min(SESSION_IDLE_TIMEOUT, PSD2_IDLE_SECONDS)
    SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT
    JWT_ACCESS_LIFETIME_SECONDS = min(JWT_ACCESS_LIFETIME_SECONDS, PSD2_IDLE_SECONDS)
    JWT_REFRESH_LIFETIME_SECONDS = min(JWT_REFRESH_LIFETIME_SECONDS, PSD2_IDLE_SECONDS)
    SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] = timedelta(seconds=JWT_ACCESS_LIFETIME_SECONDS)
    SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] = timedelta(seconds=JWT_REFRESH_LIFETIME_SECONDS)
    AXES_FAILURE_LIMIT = min(AXES_FAILURE_LIMIT, PSD2_MAX_FAILED_ATTEMPTS)
    MFA_LOCK_AFTER_FAILURES = min(MFA_LOCK_AFTER_FAILURES, PSD2_MAX_FAILED_ATTEMPTS)
    STEP_UP_EMAIL_FALLBACK = False
# Splitting: payments made without SCA since the customer's last SCA, within this window, count
# toward STEP_UP_THRESHOLD together with the new one (both profiles).
SCA_CUMULATIVE_WINDOW_HOURS = env.int("SCA_CUMULATIVE_WINDOW_HOURS", default=24)
# Art. 16 low value: at most this amount (EUR), and since the last SCA at most the cumulative
# amount and/or the count below. "both" (default, the stricter) needs both, "amount" Art. 16(b)
# alone, "count" Art. 16(c) alone.
SCA_LOW_VALUE_MAX = Decimal(env.str("SCA_LOW_VALUE_MAX", default="30.00"))
SCA_LOW_VALUE_CUMULATIVE_MAX = Decimal(env.str("SCA_LOW_VALUE_CUMULATIVE_MAX", default="100.00"))
SCA_LOW_VALUE_COUNT_MAX = env.int("SCA_LOW_VALUE_COUNT_MAX", default=5)
SCA_LOW_VALUE_COUNTERS = env.str("SCA_LOW_VALUE_COUNTERS", default="both")
# Art. 18 transaction risk analysis: the weight of each risk factor, the score from which the
# exemption is refused, the score from which no exemption but own accounts / standing orders
# applies (a small payment to a new payee from a new device), and the Annex table for credit
# transfers: (exemption threshold value EUR, reference fraud rate %), over FRAUD_WINDOW_DAYS.
SCA_TRA_WEIGHTS = {
    "new_payee": env.int("SCA_TRA_WEIGHT_NEW_PAYEE", default=25),
    "new_device": env.int("SCA_TRA_WEIGHT_NEW_DEVICE", default=25),
    "unusual_amount": env.int("SCA_TRA_WEIGHT_UNUSUAL_AMOUNT", default=30),
    "short_history": env.int("SCA_TRA_WEIGHT_SHORT_HISTORY", default=10),
    "payer_location": env.int("SCA_TRA_WEIGHT_PAYER_LOCATION", default=25),
    "payee_location": env.int("SCA_TRA_WEIGHT_PAYEE_LOCATION", default=10),
    "velocity": env.int("SCA_TRA_WEIGHT_VELOCITY", default=30),
}
SCA_TRA_MAX_SCORE = env.int("SCA_TRA_MAX_SCORE", default=40)
SCA_HIGH_RISK_SCORE = env.int("SCA_HIGH_RISK_SCORE", default=50)
SCA_TRA_VELOCITY_PER_HOUR = env.int("SCA_TRA_VELOCITY_PER_HOUR", default=5)
SCA_NEW_DEVICE_HOURS = env.int("SCA_NEW_DEVICE_HOURS", default=24)
SCA_TRA_BANDS = [
    (Decimal("500.00"), Decimal("0.005")),
    (Decimal("250.00"), Decimal("0.01")),
    (Decimal("100.00"), Decimal("0.015")),
]
SCA_FRAUD_WINDOW_DAYS = env.int("SCA_FRAUD_WINDOW_DAYS", default=90)
# Between fraud reports (each re-measures at once) the measured rate is reused this long.
SCA_FRAUD_RATE_REFRESH_SECONDS = env.int("SCA_FRAUD_RATE_REFRESH_SECONDS", default=300)
# Art. 10 (PSD2 profile): balances and this many days of payments without a second-factor session,
# if SCA was applied within as many days (the RTS allows 90; 180 since Delegated Regulation 2022/2360).
SCA_ACCOUNT_ACCESS_DAYS = env.int("SCA_ACCOUNT_ACCESS_DAYS", default=90)
# Standing orders (Art. 14): how long the confirmation of a new or changed order waits.
STANDING_ORDER_SCA_TTL_SECONDS = env.int("STANDING_ORDER_SCA_TTL_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["payments-standing-orders-run"] = {
    "task": "payments.tasks.standing_orders_run",
    "schedule": 15 * 60.0,
}

# --- Identity provider: OAuth 2.1 / OpenID Connect on django-oauth-toolkit (idp/) ---------

OAUTH2_PROVIDER_APPLICATION_MODEL = "idp.Client"
OAUTH2_PROVIDER_GRANT_MODEL = "idp.Grant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "idp.AccessToken"  # noqa: S105 (a model name)
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "idp.RefreshToken"  # noqa: S105 (a model name)
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "idp.IDToken"  # noqa: S105 (a model name)
# Issuer of every provider token; empty means PUBLIC_BASE_URL (discovery at <issuer>/.well-known/...).
IDP_ISSUER = env.str("IDP_ISSUER", default="")
# `aud` of provider access tokens (the resource APIs); empty means PUBLIC_BASE_URL + "/api/v1".
IDP_API_AUDIENCE = env.str("IDP_API_AUDIENCE", default="")
IDP_LOGOUT_TOKEN_LIFETIME_SECONDS = env.int("IDP_LOGOUT_TOKEN_LIFETIME_SECONDS", default=120)
# http redirect URIs (loopback demo relying parties): dev and test only; prod requires https.
IDP_ALLOW_HTTP_REDIRECTS = env.bool(
    "IDP_ALLOW_HTTP_REDIRECTS",
    default=env.str("DJANGO_SETTINGS_MODULE", default="").endswith((".dev", ".test")),
)


CELERY_BEAT_SCHEDULE["idp-clear-expired-tokens"] = {"task": "idp.tasks.tokens_clear_expired", "schedule": 3600.0}

# FAPI 2.0 profile (issue 18; README "FAPI 2.0 profile"): PAR, private_key_jwt, DPoP.
# RFC 7662 4: a client learns about the tokens issued to itself; the clients named here (resource
# servers that receive other clients' tokens) may introspect any token. Whitespace-separated client_ids.
IDP_INTROSPECTION_CLIENTS = frozenset(env.str("IDP_INTROSPECTION_CLIENTS", default="").split())
IDP_PAR_LIFETIME_SECONDS = env.int("IDP_PAR_LIFETIME_SECONDS", default=50)  # a request_uri: once, < 60 s
IDP_PAR_INTERACTION_SECONDS = env.int("IDP_PAR_INTERACTION_SECONDS", default=600)  # login + consent after it
IDP_CLIENT_JWKS_TIMEOUT_SECONDS = env.float("IDP_CLIENT_JWKS_TIMEOUT_SECONDS", default=3.0)
IDP_CLIENT_JWKS_CACHE_SECONDS = env.int("IDP_CLIENT_JWKS_CACHE_SECONDS", default=300)
IDP_CLIENT_JWKS_REFETCH_SECONDS = env.int("IDP_CLIENT_JWKS_REFETCH_SECONDS", default=60)
IDP_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS = env.int("IDP_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS", default=300)
DPOP_ALGORITHMS = ["ES256", "PS256"]
DPOP_PROOF_MAX_AGE_SECONDS = env.int("DPOP_PROOF_MAX_AGE_SECONDS", default=60)
DPOP_PROOF_FUTURE_SECONDS = env.int("DPOP_PROOF_FUTURE_SECONDS", default=10)
DPOP_REQUIRE_NONCE = env.bool("DPOP_REQUIRE_NONCE", default=False)
DPOP_NONCE_LIFETIME_SECONDS = env.int("DPOP_NONCE_LIFETIME_SECONDS", default=300)
# The mobile API's own tokens: login and refresh demand a DPoP proof and bind the tokens.
API_REQUIRE_DPOP = env.bool("API_REQUIRE_DPOP", default=False)
# ES256 key of FAPI clients' tokens (accounts.eckey), beside the RSA key in the one JWKS.
JWT_EC_PRIVATE_KEY = env.str("JWT_EC_PRIVATE_KEY", default="", multiline=True)
JWT_EC_PRIVATE_KEY_FILE = env.str("JWT_EC_PRIVATE_KEY_FILE", default="")
JWT_EC_PREVIOUS_PUBLIC_KEYS = env.str("JWT_EC_PREVIOUS_PUBLIC_KEYS", default="", multiline=True)
JWT_EC_DEV_KEY_FILE = env.str("JWT_EC_DEV_KEY_FILE", default=str(BASE_DIR / "secrets" / "jwt-ec-dev-key.pem"))


def _idp_issuer() -> str:
    from django.conf import settings as _settings

    return str(_settings.IDP_ISSUER or _settings.PUBLIC_BASE_URL).rstrip("/")


OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    # Evaluated at use, so a settings module that changes PUBLIC_BASE_URL changes the issuer too.
    "OIDC_ISS_ENDPOINT": _lazy(_idp_issuer, str)(),
    "OAUTH2_VALIDATOR_CLASS": "idp.validator.Validator",
    "SCOPES_BACKEND_CLASS": "idp.scopes.ClientScopes",
    "SCOPES": {
        "openid": "Sign you in with your bank identity",
        "email": "See your email address",
        "offline_access": "Stay connected when you are not using it",
        "read:accounts": "See your bank accounts and their balances",
        "read:payments": "See your payments",
        "write:payments": "Make payments from your accounts",
    },
    "DEFAULT_SCOPES": ["openid"],
    "ACCESS_TOKEN_GENERATOR": "idp.tokens.access_token_generator",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "CLIENT_ID_GENERATOR_CLASS": "idp.generators.ClientIdGenerator",
    "CLIENT_SECRET_GENERATOR_CLASS": "idp.generators.ClientSecretGenerator",
    "CLIENT_SECRET_HASHER": "idp_keyed_sha256",
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": env.int("IDP_CODE_LIFETIME_SECONDS", default=60),
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("IDP_ACCESS_TOKEN_LIFETIME_SECONDS", default=15 * 60),
    "ID_TOKEN_EXPIRE_SECONDS": env.int("IDP_ID_TOKEN_LIFETIME_SECONDS", default=5 * 60),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env.int("IDP_REFRESH_TOKEN_LIFETIME_SECONDS", default=7 * 24 * 60 * 60),
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if IDP_ALLOW_HTTP_REDIRECTS else ["https"],
    "ALLOW_URI_WILDCARDS": False,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "client_credentials", "refresh_token"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": True,
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,  # idp.views ends the whole login instead
    "REQUEST_APPROVAL_PROMPT": "auto",
    "ERROR_RESPONSE_WITH_SCOPES": True,
    # RFC 9700: every compliant behaviour on (no implicit, no password grant, no plain PKCE,
    # no token in the query string, `iss` in the authorization response, tokens hashed at rest)
    # and every configuration gate an error, so `check --deploy` raises none of DOT's warnings.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": not IDP_ALLOW_HTTP_REDIRECTS,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}
