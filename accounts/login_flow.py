"""What happens once the password is right: a second step when one is needed, else the session.

Kept apart from the views so that the second-factor step (mfa) and the risk engine plug in
here without touching the login page. `second_factor_required` is the one decision both the
web login and the JSON API call.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import User
from mfa import selectors as mfa_selectors
from mfa.middleware import ENROL_REQUIRED_SESSION_KEY, PENDING_SESSION_KEY
from risk import web as risk_web


def second_factor_required(*, request: HttpRequest, user: User, device_id: str | None = None) -> tuple[bool, list[str]]:
    """(required?, reasons). Required when the user has a factor or policy requires one.

    A "policy" reason with no usable factor means the user must enrol first (staff and the
    security group): the web login lets them in only to the enrolment pages; the API
    should refuse. The risk engine adds its own signals here.
    """
    reasons: list[str] = []
    if mfa_selectors.methods_for(user=user):
        reasons.append("has_factor")
    if mfa_selectors.mfa_required_by_policy(user=user):
        reasons.append("policy")
    # Risk signals: "deny" first when refused, "risk:<signal>" when one asks for a second
    # factor, "has_factor" dropped for a remembered device with nothing unusual.
    reasons = risk_web.adjust_reasons(request=request, user=user, reasons=reasons, device_id=device_id)
    return bool(reasons), reasons


def pending_login(request: HttpRequest) -> dict[str, Any] | None:
    """The password-verified login waiting for its second factor, if still fresh."""
    pending = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(pending, dict):
        return None
    if timezone.now().timestamp() - float(pending.get("at", 0)) > settings.MFA_PENDING_LOGIN_SECONDS:
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    return pending


def pending_user(request: HttpRequest) -> User | None:
    pending = pending_login(request)
    if pending is None:
        return None
    uid = pending.get("uid")
    if not isinstance(uid, int):
        return None
    return User.objects.filter(pk=uid, is_active=True).first()


def password_verified(request: HttpRequest, *, user: User, next_url: str) -> HttpResponse:
    required, reasons = second_factor_required(request=request, user=user)
    has_factor = bool(mfa_selectors.methods_for(user=user))
    refused_or_code_step = risk_web.login_gate(
        request, user=user, next_url=next_url, reasons=reasons, has_factor=has_factor
    )
    if refused_or_code_step is not None:
        return refused_or_code_step
    if required and has_factor:
        # Not logged in yet: the session only remembers who passed the password step.
        request.session.cycle_key()
        request.session[PENDING_SESSION_KEY] = {
            "uid": user.pk,
            "next": next_url,
            "at": timezone.now().timestamp(),
            "reasons": reasons,
        }
        return HttpResponseRedirect(reverse("mfa:login_step"))
    services.session_start(
        request=request,
        user=user,
        amr=["pwd"],
        extra={**({"mfa_reasons": reasons} if reasons else {}), **risk_web.audit_details(request, user)},
    )
    risk_web.login_done(request, user=user, amr=["pwd"])
    if required:
        # Staff / security group without a strong factor: enrolment first, nothing else.
        request.session[ENROL_REQUIRED_SESSION_KEY] = True
        return HttpResponseRedirect(reverse("mfa:enrol_required"))
    if settings.MFA_PROMPT_CUSTOMERS:
        state = mfa_selectors.state_for(user=user)
        if state is None or state.enrol_prompt_dismissed_at is None:
            return HttpResponseRedirect(reverse("mfa:enrol_prompt") + "?" + urlencode({"next": next_url}))
    return HttpResponseRedirect(next_url)


def second_factor_verified(request: HttpRequest, *, user: User, amr: str, method: str) -> HttpResponse:
    """Completes a pending login after its second factor."""
    pending = pending_login(request) or {}
    next_url = str(pending.get("next") or reverse(settings.LOGIN_REDIRECT_URL))
    reasons = pending.get("reasons") or []
    request.session.pop(PENDING_SESSION_KEY, None)
    services.session_start(
        request=request,
        user=user,
        amr=["pwd", amr],
        extra={"mfa_method": method, "mfa_reasons": reasons, **risk_web.audit_details(request, user)},
    )
    _mark_otp_verified(request, user=user, method=method)
    risk_web.login_done(request, user=user, amr=["pwd", amr])
    if mfa_selectors.mfa_required_by_policy(user=user) and not mfa_selectors.has_strong_factor(user=user):
        request.session[ENROL_REQUIRED_SESSION_KEY] = True
        return HttpResponseRedirect(reverse("mfa:enrol_required"))
    return HttpResponseRedirect(next_url)


def _mark_otp_verified(request: HttpRequest, *, user: User, method: str) -> None:
    """Tells django-otp which device verified this session, so `user.is_verified()` holds too."""
    import django_otp

    model = mfa_selectors.FACTOR_MODELS.get(method)
    if model is None:
        return
    from django.db.models import F

    device = model.objects.filter(user=user, confirmed=True).order_by(F("last_used_at").desc(nulls_last=True)).first()
    if device is not None:
        django_otp.login(request, device)
