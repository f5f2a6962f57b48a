"""Settings of the plain reference app (bench only: every value comes from the bench's environment)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "plain.urls"
WSGI_APPLICATION = "plain.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "plain.User"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "oauth2_provider",
    "plain",
]
# django-admin startproject's middleware, as a plain app ships it.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "OPTIONS": {}}]

_db = os.environ["DATABASE_URL"].rsplit("/", 1)[-1]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db,
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        # the portal's own connection settings (config/settings/base.py), so neither side pays a connect
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}

# The portal's argon2id parameters (ARGON2_* variables, the same defaults).
PASSWORD_HASHERS = ["plain.hashers.Argon2id"]
ARGON2_TIME_COST = int(os.environ.get("ARGON2_TIME_COST", "5"))
ARGON2_MEMORY_COST_KIB = int(os.environ.get("ARGON2_MEMORY_COST_KIB", "7168"))
ARGON2_PARALLELISM = int(os.environ.get("ARGON2_PARALLELISM", "1"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
_key = Path(os.environ["JWT_PRIVATE_KEY_FILE"]).read_text()
SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    "SIGNING_KEY": _key,
    "VERIFYING_KEY": os.environ["PLAIN_JWT_PUBLIC_KEY"],
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}
OAUTH2_PROVIDER = {
    "SCOPES": {"read:accounts": "Read accounts"},
    "DEFAULT_SCOPES": ["read:accounts"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 300,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
