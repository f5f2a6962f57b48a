from __future__ import annotations

from typing import Any

from django import template

from accounts.models import User
from risk import selectors
from risk.forms import AllowedCountriesForm

register = template.Library()


@register.inclusion_tag("risk/_security_sections.html", takes_context=True)
def risk_security_sections(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {"devices": []}
    from risk.services import current_device

    current = current_device(request=request, user=user) if request is not None else None
    profile = selectors.profile_for_user(user=user)
    allowed = profile.allowed_countries if profile else []
    return {
        "devices": list(selectors.devices_for_user(user=user)),
        "current_device_id": current.pk if current else None,
        "countries_form": AllowedCountriesForm(initial={"countries": ", ".join(allowed)}),
        "allowed_countries": allowed,
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }


@register.inclusion_tag("risk/_activity.html", takes_context=True)
def risk_activity(context: template.Context, limit: int = 20) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {"lines": []}
    return {"lines": selectors.activity_in_plain_words(user=user, limit=limit)}


@register.simple_tag
def remember_device_days() -> int:
    from django.conf import settings

    return int(settings.RISK_DEVICE_TRUST_DAYS)
