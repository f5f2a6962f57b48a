"""/api/v1/ routes of the login's second step (included by config/api_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from mfa import api

app_name = "mfa_api"

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/mfa/challenge", api.MfaChallengeView.as_view(), name="mfa_challenge"),
    path("auth/mfa/verify", api.MfaVerifyView.as_view(), name="mfa_verify"),
]
