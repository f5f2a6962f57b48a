from __future__ import annotations

import json
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.authn import reauth_required
from accounts.models import User
from risk import services
from risk.forms import AllowedCountriesForm, DeviceRenameForm
from risk.models import KnownDevice


@login_required
@require_POST
def device_rename_view(request: HttpRequest, device_id: UUID) -> HttpResponse:
    assert isinstance(request.user, User)
    form = DeviceRenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please give the device a name of up to 120 characters.")
        return redirect("accounts:security")
    try:
        services.device_rename(user=request.user, device_pk=str(device_id), name=form.cleaned_data["name"])
    except KnownDevice.DoesNotExist as exc:
        raise Http404 from exc
    except services.RiskError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:security")
    messages.success(request, "The device has been renamed.")
    return redirect("accounts:security")


@login_required
@require_POST
def device_forget_view(request: HttpRequest, device_id: UUID) -> HttpResponse:
    assert isinstance(request.user, User)
    try:
        services.device_forget(user=request.user, device_pk=str(device_id))
    except KnownDevice.DoesNotExist as exc:
        raise Http404 from exc
    messages.success(request, "The device has been forgotten. Its next sign-in will count as a new device.")
    return redirect("accounts:security")


@login_required
@require_POST
def allowed_countries_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    form = AllowedCountriesForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("countries", ["Please check the codes."])))
        return redirect("accounts:security")
    services.allowed_countries_set(user=request.user, countries=form.cleaned_data["countries"])
    if form.cleaned_data["countries"]:
        messages.success(request, "Sign-in is now allowed only from: " + ", ".join(form.cleaned_data["countries"]))
    else:
        messages.success(request, "Sign-in is allowed from any country.")
    return redirect("accounts:security")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@reauth_required
def data_export_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    if request.method == "GET":
        return render(request, "risk/data_export.html")
    from risk.export import personal_data_export

    try:
        document = personal_data_export(request=request, user=request.user)
    except services.ExportRateLimited as exc:
        return render(request, "risk/data_export.html", {"error": str(exc)}, status=429)
    body = json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    filename = f"bank-portal-data-{timezone.now():%Y%m%d-%H%M%S}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def not_me_view(request: HttpRequest, token: str) -> HttpResponse:
    """Reached from the alert email; the signed link is the authority, no login needed."""
    try:
        alert = services.not_me_alert(token=token)
    except services.RiskError as exc:
        return render(request, "risk/not_me.html", {"error": str(exc)}, status=400)
    if request.method == "POST":
        services.not_me_confirm(token=token)
        if request.user.is_authenticated:
            from django.contrib.auth import logout

            logout(request)
        return HttpResponseRedirect(reverse("risk:not_me", kwargs={"token": token}))
    return render(request, "risk/not_me.html", {"alert": alert, "done": alert.reported_at is not None})
