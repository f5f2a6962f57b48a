from __future__ import annotations

from django.apps import AppConfig


class PlainConfig(AppConfig):
    name = "plain"
    default_auto_field = "django.db.models.BigAutoField"
