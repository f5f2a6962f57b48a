"""/api/v1/ routes of the Banking API (included by config/api_urls.py)."""

from __future__ import annotations

from django.urls import path

from payments import api

urlpatterns = [
    path("accounts", api.AccountsView.as_view(), name="api-accounts"),
    path("beneficiaries", api.BeneficiariesView.as_view(), name="api-beneficiaries"),
    path("beneficiaries/challenge", api.BeneficiaryChallengeView.as_view(), name="api-beneficiary-challenge"),
    path("beneficiaries/<str:beneficiary_id>/trust", api.BeneficiaryTrustView.as_view(), name="api-beneficiary-trust"),
    path(
        "beneficiaries/<str:beneficiary_id>/trust/challenge",
        api.BeneficiaryTrustChallengeView.as_view(),
        name="api-beneficiary-trust-challenge",
    ),
    path(
        "beneficiaries/<str:beneficiary_id>/trust/confirm",
        api.BeneficiaryTrustConfirmView.as_view(),
        name="api-beneficiary-trust-confirm",
    ),
    path("payments", api.PaymentsView.as_view(), name="api-payments"),
    path("payments/<str:payment_id>", api.PaymentDetailView.as_view(), name="api-payment"),
    path(
        "payments/<str:payment_id>/step-up/challenge",
        api.PaymentChallengeView.as_view(),
        name="api-payment-challenge",
    ),
    path("payments/<str:payment_id>/confirm", api.PaymentConfirmView.as_view(), name="api-payment-confirm"),
    path("payments/<str:payment_id>/report-fraud", api.PaymentFraudReportView.as_view(), name="api-payment-fraud"),
    path("standing-orders", api.StandingOrdersView.as_view(), name="api-standing-orders"),
    path("standing-orders/<str:order_id>", api.StandingOrderDetailView.as_view(), name="api-standing-order"),
    path(
        "standing-orders/<str:order_id>/challenge",
        api.StandingOrderChallengeView.as_view(),
        name="api-standing-order-challenge",
    ),
    path(
        "standing-orders/<str:order_id>/confirm",
        api.StandingOrderConfirmView.as_view(),
        name="api-standing-order-confirm",
    ),
]
