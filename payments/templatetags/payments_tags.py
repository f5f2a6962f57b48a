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
