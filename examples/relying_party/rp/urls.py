from __future__ import annotations

from django.urls import path

from rp import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("oidc/callback/", views.callback, name="callback"),
    path("oidc/backchannel-logout/", views.backchannel_logout, name="backchannel-logout"),
]
