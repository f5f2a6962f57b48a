"""`make test`: real PostgreSQL and Redis on localhost; cheap hashing, locmem email."""

from __future__ import annotations

import os

from .base import *
from .base import env

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="test-only-key-not-secret-0123456789abcdef0123456789")
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PUBLIC_BASE_URL = "https://portal.bank.test"

# The real hasher with smaller parameters keeps the suite fast; a test checks the defaults.
ARGON2_TIME_COST = 1
ARGON2_MEMORY_COST_KIB = 1024

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
TWILIO_ACCOUNT_SID = "AC" + "0" * 32
TWILIO_AUTH_TOKEN = "test-auth-token"  # noqa: S105 (a fake for the HTTP mock)
TWILIO_FROM_NUMBER = "+15005550006"

# Tests own Redis database 15 (flushed between tests) and a database of their own. Under
# pytest-xdist (`make test` runs two workers) worker gwN takes database 15 - 2N (or REDIS_URL's - 2N),
# so that one worker's flush never empties another's; pytest-django already gives each worker a
# PostgreSQL test database of its own (test_<name>_gwN).
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/15")
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist_worker.startswith("gw"):
    from urllib.parse import urlsplit, urlunsplit

    _url = urlsplit(REDIS_URL)
    _worker_db = int(_url.path.strip("/") or 0) - 2 * int(_xdist_worker[2:])
    if _worker_db < 0:
        raise ValueError(f"no Redis database left for xdist worker {_xdist_worker} below {REDIS_URL}")
    REDIS_URL = urlunsplit(_url._replace(path=f"/{_worker_db}"))
CACHES["default"]["LOCATION"] = REDIS_URL
CELERY_BROKER_URL = "memory://"
CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="bp-test")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# JWT: a fresh RSA key for each test run (no key file needed).
JWT_KEY_FALLBACK = "generate"
