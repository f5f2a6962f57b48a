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
    path("payments/beneficiaries/<uuid:beneficiary_id>/trust/", views.beneficiary_trust_view, name="beneficiary_trust"),
    path(
        "payments/beneficiaries/<uuid:beneficiary_id>/untrust/",
        views.beneficiary_untrust_view,
        name="beneficiary_untrust",
    ),
    path("payments/standing-orders/", views.standing_order_list_view, name="standing_orders"),
    path("payments/standing-orders/new/", views.standing_order_new_view, name="standing_order_new"),
    path(
        "payments/standing-orders/<uuid:order_id>/confirm/",
        views.standing_order_confirm_view,
        name="standing_order_confirm",
    ),
    path(
        "payments/standing-orders/<uuid:order_id>/cancel/",
        views.standing_order_cancel_view,
        name="standing_order_cancel",
    ),
    path("payments/accounts/<uuid:account_id>/statement/", views.statement_view, name="statement"),
    path("payments/<uuid:payment_id>/", views.payment_detail_view, name="detail"),
    path("payments/<uuid:payment_id>/confirm/", views.payment_confirm_view, name="confirm"),
    path("payments/<uuid:payment_id>/report-fraud/", views.payment_report_fraud_view, name="report_fraud"),
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
