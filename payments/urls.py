from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from payments import views

app_name = "payments"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.dashboard_view, name="dashboard"),
    path("payments/", views.payment_list_view, name="list"),
    path("payments/new/", views.payment_new_view, name="new"),
    path("payments/beneficiaries/", views.beneficiary_list_view, name="beneficiaries"),
    path("payments/beneficiaries/add/", views.beneficiary_add_view, name="beneficiary_add"),
    path("payments/accounts/<uuid:account_id>/statement/", views.statement_view, name="statement"),
    path("payments/<uuid:payment_id>/", views.payment_detail_view, name="detail"),
    path("payments/<uuid:payment_id>/confirm/", views.payment_confirm_view, name="confirm"),
    path(
        "payments/<uuid:payment_id>/confirm/passkey/begin/",
        views.payment_passkey_begin_view,
        name="confirm_passkey_begin",
    ),
    path(
        "payments/<uuid:payment_id>/confirm/passkey/finish/",
        views.payment_passkey_finish_view,
        name="confirm_passkey_finish",
    ),
]
