from __future__ import annotations

from django.urls import URLPattern, URLResolver

app_name = "mfa"

urlpatterns: list[URLPattern | URLResolver] = []
