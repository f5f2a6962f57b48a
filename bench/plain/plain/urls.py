from __future__ import annotations

from django.urls import include, path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from plain import views

urlpatterns = [
    path("healthz", views.healthz),
    path("api/v1/auth/login", TokenObtainPairView.as_view()),
    path("api/v1/auth/token/refresh", TokenRefreshView.as_view()),
    path("api/v1/me", views.Me.as_view()),
    path("api/v1/accounts", views.AccountList.as_view()),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
