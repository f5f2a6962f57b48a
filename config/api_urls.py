"""Routes under /api/. Areas add their `/api/v1/...` includes here with small edits."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.api.views import APIDocsView

urlpatterns = [
    # The API first, its hot reads at the head of their includes (/me, then /accounts): Django tries
    # patterns in order and records every pattern it passes on the way.
    path("v1/", include("accounts.api.urls")),
    path("v1/", include("payments.api_urls")),  # before mfa's: /accounts and /payments are the hot reads
    path("v1/", include("mfa.api_urls")),
    path("v1/", include("audit.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", APIDocsView.as_view(url_name="api-schema"), name="api-docs"),
]
