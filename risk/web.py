"""The risk engine's hooks in the web login (accounts/login_flow.py calls these)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from accounts.models import User
from risk import services


def channel_of(request: HttpRequest) -> services.Channel:
    return "api" if request.path.startswith("/api/") else "web"


def adjust_reasons(*, request: HttpRequest, user: User, reasons: list[str], device_id: str | None) -> list[str]:
    """The second-factor reasons once the risk engine has looked at the login.

    "deny" first when the login is refused; "risk:<signal>" when a signal asks for a second
    factor; "has_factor" dropped when a remembered device has nothing unusual about it.
    """
    decision = services.evaluate_login(request=request, user=user, channel=channel_of(request), device_id=device_id)
    if decision.denied:
        return ["deny", *decision.reasons]
    adjusted = list(reasons)
    if decision.skips_second_factor and "has_factor" in adjusted:
        adjusted.remove("has_factor")
    if decision.requires_second_factor:
        adjusted.extend(f"risk:{r}" for r in decision.reasons)
    return adjusted


def login_gate(
    request: HttpRequest, *, user: User, next_url: str, reasons: list[str], has_factor: bool
) -> HttpResponse | None:
    """A refusal page, or the emailed-code step for a risky login without a factor, or None."""
    decision = services.pending_decision(request=request, user=user)
    if "deny" in reasons:
        return login_refused(request, message=decision.message if decision else services.DEFAULT_DENY_MESSAGE)
    risky = any(r.startswith("risk:") for r in reasons)
    if risky and not has_factor and decision is not None:
        try:
            services.login_code_start(request=request, user=user, next_url=next_url, decision=decision)
        except services.RiskError as exc:
            return login_refused(request, message=str(exc), status=429)
        return HttpResponseRedirect(reverse("risk:login_code"))
    return None


def login_refused(request: HttpRequest, *, message: str, status: int = 403) -> HttpResponse:
    from accounts.forms import LoginForm

    return render(
        request,
        "accounts/login.html",
        {"form": LoginForm(), "error": message, "notice": "", "show_captcha": False, "next": ""},
        status=status,
    )


def audit_details(request: HttpRequest, user: User) -> dict[str, Any]:
    decision = services.pending_decision(request=request, user=user)
    return decision.audit_details() if decision else {}


def login_done(request: HttpRequest, *, user: User, amr: list[str]) -> None:
    """After session_start: remember the device and place, alert, and "remember this device"."""
    decision = services.pending_decision(request=request, user=user)
    services.login_succeeded(request=request, user=user, decision=decision, amr=amr)
    if request.method == "POST" and request.POST.get("remember_device") and len(amr) > 1:
        services.device_trust(request=request, user=user)
