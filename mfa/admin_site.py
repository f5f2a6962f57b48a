"""The Django admin behind a verified strong second factor (TOTP or passkey) in this session."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

STRONG_AMR = ("otp", "hwk")


def session_has_strong_factor(request: HttpRequest) -> bool:
    """The login of this session used TOTP or a passkey, and the user still has that kind of factor."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    amr = request.session.get("amr") or []
    if not any(value in STRONG_AMR for value in amr):
        return False
    from mfa import selectors

    return selectors.has_strong_factor(user=user)


class StrongFactorAdminSite(admin.AdminSite):
    site_header = "Bank Portal administration"

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_permission(request)) and session_has_strong_factor(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Sign-in happens on the portal's own login page (password, then the second factor)."""
        user = getattr(request, "user", None)
        if self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        if user is not None and user.is_authenticated:
            return render(request, "mfa/admin_refused.html", {"is_staff": user.is_staff}, status=403)
        next_url = request.GET.get("next") or reverse("admin:index")
        return HttpResponseRedirect(reverse("accounts:login") + "?" + urlencode({"next": next_url}))
