from __future__ import annotations

from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("reports/", views.reports_view, name="reports"),
    path("reports/suspicious/", views.suspicious_view, name="suspicious"),
    path("reports/events.csv", views.events_csv_view, name="events_csv"),
]
