from __future__ import annotations

from typing import Any

from django import template

from payments.selectors import payments_for_user

register = template.Library()


@register.simple_tag
def recent_payments(user: Any, limit: int = 5) -> list[Any]:
    """The user's newest payments, for the dashboard."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(payments_for_user(user=user)[:limit])


REASON_TEXT = {
    "above_threshold": "above the confirmation threshold",
    "cumulative_above_threshold": "with your recent payments it is above the confirmation threshold",
    "unusual_amount": "unusually large for this account",
    "new_beneficiary": "first payment to a new beneficiary",
    "high_risk": "new payee or device",
    "psd2_sca": "no exemption applies",
    "evaluation_error": "we could not assess it",
}


@register.filter
def sca_reason(code: str) -> str:
    """Why a payment needs strong customer authentication, in words."""
    return REASON_TEXT.get(str(code), str(code).replace("_", " "))


EXEMPTION_SHORT = {
    "own_accounts": "own accounts",
    "trusted_beneficiary": "trusted beneficiary",
    "recurring": "standing order",
    "low_value": "low value",
    "transaction_risk_analysis": "low risk",
}


@register.filter
def exemption_label(code: str) -> str:
    """The RTS exemption a payment used, in a few words."""
    return EXEMPTION_SHORT.get(str(code), str(code).replace("_", " "))
