"""`make run`: no services needed. SQLite, local-memory cache, eager Celery, console email."""

from __future__ import annotations

from .base import *
from .base import BASE_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me-0123456789abcdef")

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'dev.sqlite3'}"),
}
if env.str("REDIS_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("REDIS_URL"),
            "KEY_PREFIX": "bp",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")

SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

SILENCED_SYSTEM_CHECKS = [
    "axes.W002",
    # A local-memory cache is not shared between processes; fine for a single dev server.
    "django_ratelimit.E003",
    "django_ratelimit.W001",
    # SQLite has no covering indexes: audit_payment_completed_idx is a plain partial index there.
    "models.W040",
]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# JWT: without JWT_PRIVATE_KEY(_FILE), a key generated once and kept in secrets/ (git-ignored).
JWT_KEY_FALLBACK = env.str("JWT_KEY_FALLBACK", default="file")
