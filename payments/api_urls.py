"""/api/v1/ routes of the Banking API (included by config/api_urls.py)."""

from __future__ import annotations

from django.urls import path

from payments import api

urlpatterns = [
    path("accounts", api.AccountsView.as_view(), name="api-accounts"),
    path("beneficiaries", api.BeneficiariesView.as_view(), name="api-beneficiaries"),
    path("beneficiaries/challenge", api.BeneficiaryChallengeView.as_view(), name="api-beneficiary-challenge"),
    path("payments", api.PaymentsView.as_view(), name="api-payments"),
    path("payments/<str:payment_id>", api.PaymentDetailView.as_view(), name="api-payment"),
    path(
        "payments/<str:payment_id>/step-up/challenge",
        api.PaymentChallengeView.as_view(),
        name="api-payment-challenge",
    ),
    path("payments/<str:payment_id>/confirm", api.PaymentConfirmView.as_view(), name="api-payment-confirm"),
]
