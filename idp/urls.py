"""Routes of the provider. DOT's own views are mounted under the "oauth2_provider" namespace
(DOT reverses those names); discovery sits at the issuer's /.well-known/openid-configuration
and the key set is the one JWKS of the portal (/.well-known/jwks.json, config/urls.py)."""

from __future__ import annotations

from django.urls import include, path, re_path
from oauth2_provider import views as dot_views

from idp import views

oauth_patterns = [
    path("authorize/", views.AuthorizeView.as_view(), name="authorize"),
    path("par/", views.PushedAuthorizationView.as_view(), name="par"),
    path("token/", views.TokenView.as_view(), name="token"),
    path("revoke/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", views.IntrospectView.as_view(), name="introspect"),
    path("userinfo/", dot_views.UserInfoView.as_view(), name="user-info"),
    path("logout/", views.LogoutView.as_view(), name="rp-initiated-logout"),
]

idp_patterns = [
    path("security/apps/", views.connected_apps_view, name="connected_apps"),
    path("security/apps/<int:client_pk>/revoke/", views.connected_app_revoke_view, name="connected_app_revoke"),
]

urlpatterns = [
    path("o/", include((oauth_patterns, "oauth2_provider"))),
    re_path(r"^\.well-known/openid-configuration/?$", views.discovery_view, name="oidc-discovery"),
    path("", include((idp_patterns, "idp"))),
]
