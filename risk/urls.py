from __future__ import annotations

from django.urls import path

from risk import views

app_name = "risk"

urlpatterns = [
    path("security/devices/<uuid:device_id>/rename/", views.device_rename_view, name="device_rename"),
    path("security/devices/<uuid:device_id>/forget/", views.device_forget_view, name="device_forget"),
    path("security/countries/", views.allowed_countries_view, name="allowed_countries"),
    path("security/export/", views.data_export_view, name="data_export"),
    path("security/not-me/<str:token>/", views.not_me_view, name="not_me"),
]
