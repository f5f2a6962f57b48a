from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from accounts.api.views import jwks_view
from core import views as core_views

urlpatterns = [
    # First: an API path would otherwise be tried against every page include before (Django
    # builds the list of tried patterns on each miss: a measurable share of a bearer read).
    path("api/", include("config.api_urls")),
    path("", include("core.urls")),
    path("", include("accounts.urls")),
    path("", include("mfa.urls")),
    path("", include("payments.urls")),
    path("", include("audit.urls")),
    path("", include("risk.urls")),
    path("", include("idp.urls")),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("admin/", admin.site.urls),
]

handler400 = core_views.bad_request
handler403 = core_views.permission_denied
handler404 = core_views.page_not_found
handler500 = core_views.server_error
