from __future__ import annotations

from typing import Any

from django import template

from mfa import selectors

register = template.Library()


@register.simple_tag
def mfa_overview(user: Any) -> dict[str, Any]:
    """What the security page shows about the user's second factors."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    rows = selectors.factor_rows(user=user)
    allowed = selectors.allowed_methods(user=user)
    methods = selectors.methods_for(user=user)
    return {
        "rows": rows,
        "preferred": selectors.preferred_method(user=user),
        "choosable": [{"method": m, "label": selectors.METHOD_LABELS[m]} for m in methods if m != "recovery"],
        "can_add": {m: m in allowed for m in selectors.FACTOR_MODELS},
        "has_sms": any(r.method == "sms" for r in rows),
        "has_email": any(r.method == "email" for r in rows),
        "has_factor": bool(methods),
        "strong_only": selectors.strong_only(user=user),
        "locked_until": selectors.locked_until(user=user),
    }
