"""/api/v1/ routes of the authentication API (included by config/api_urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from accounts.api import views

app_name = "accounts_api"

urlpatterns: list[URLPattern | URLResolver] = [
    path("me", views.MeView.as_view(), name="me"),  # first: the hot read (patterns are tried in order)
    path("auth/login", views.LoginView.as_view(), name="login"),
    path("auth/token/refresh", views.RefreshView.as_view(), name="token_refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="logout"),
    path("sessions", views.SessionListView.as_view(), name="sessions"),
    path("sessions/<str:session_id>", views.SessionDetailView.as_view(), name="session_detail"),
]
