"""Pages of the mfa app: the login's second step, re-authentication, enrolment and management."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import authn, pipeline
from accounts import services as account_services
from accounts.models import User
from accounts.pipeline import LoginAttempt
from audit.events import EventType
from core.net import safe_next
from mfa import selectors, services
from mfa.forms import (
    CodeConfirmForm,
    CodeForm,
    PasswordReauthForm,
    PhoneForm,
    PreferredForm,
    RenameForm,
    TOTPConfirmForm,
)
from mfa.middleware import ENROL_REQUIRED_SESSION_KEY
from mfa.models import CodeChallenge, TOTPFactor
from mfa.stages import SecondFactorStage, code_purpose, prime

TOTP_SETUP_KEY = "mfa_totp_setup"


def _json_error(detail: str, code: str, status: int = 400, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code, **extra}, status=status)


def _json_body(request: HttpRequest) -> dict[str, Any]:
    from core.http import json_body

    return json_body(request)


def _method_choices(methods: list[str]) -> list[dict[str, str]]:
    return [{"method": m, "label": selectors.METHOD_LABELS[m]} for m in methods]


def _challenge_info(*, user: User, method: str, purpose: str, binding: str = "") -> dict[str, Any] | None:
    """The live code challenge the page is waiting for (the latest one sent for this purpose)."""
    challenge = (
        CodeChallenge.objects.filter(
            user=user, method=method, purpose=purpose, binding=binding, used_at__isnull=True, voided_at__isnull=True
        )
        .order_by("-created_at")
        .first()
    )
    if challenge is None or not challenge.is_live:
        return None
    return {
        "sent_to": challenge.sent_to,
        "expires_at": challenge.expires_at,
        "delayed": services.delivery_delayed(challenge=challenge),
    }


def _send_code(request: HttpRequest, *, user: User, method: str, purpose: str, binding: str = "") -> None:
    try:
        challenge = services.code_send(user=user, method=method, purpose=purpose, binding=binding)
    except services.MFAError as exc:
        messages.error(request, exc.message)
        return
    if services.delivery_delayed(challenge=challenge):
        messages.warning(
            request,
            f"We could not send the code to {challenge.sent_to} right away; it may arrive late. "
            "You can wait a moment, or use another method below.",
        )
    else:
        messages.success(request, f"We sent a code to {challenge.sent_to}. It is valid for 5 minutes.")


# --- The login's second step (a stage of accounts/pipeline.py: mfa.stages.SecondFactorStage) ---------


def _paused_or_restart(request: HttpRequest) -> LoginAttempt | HttpResponse:
    attempt = pipeline.pending_web(request)
    if attempt is None or attempt.waiting.get("stage") != SecondFactorStage.key:
        pipeline.abandon(request)
        return HttpResponseRedirect(reverse("accounts:login") + "?reason=expired")
    return prime(attempt)


def _continue(request: HttpRequest, attempt: LoginAttempt, *, amr: str, method: str) -> str:
    """The factor was right: the pipeline runs the remaining stages and finishes the login."""
    return pipeline.web_redirect(
        pipeline.resume(attempt, stage_key=SecondFactorStage.key, amr=amr, details={"mfa_method": method})
    )


@never_cache
@require_http_methods(["GET", "POST"])
def login_step_view(request: HttpRequest) -> HttpResponse:
    paused = _paused_or_restart(request)
    if isinstance(paused, HttpResponse):
        return paused
    attempt = paused
    user = attempt.user
    methods = list(attempt.waiting.get("methods") or [])
    verified_address = bool(attempt.waiting.get("verified_address"))
    preferred = (selectors.preferred_method(user=user) if not verified_address else "email") or ""
    method = request.POST.get("method") or request.GET.get("method") or preferred
    if method not in methods:
        method = preferred if preferred in methods else (methods[0] if methods else "")
    form = CodeForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST" and method != "webauthn":
        if form.is_valid():
            try:
                pipeline.attempt_try(attempt)  # counted before the code is read
            except pipeline.TooManyAttempts:
                return HttpResponseRedirect(reverse("accounts:login") + "?reason=expired")
            attempt.remember_device = bool(request.POST.get("remember_device"))
            # The check and the login it completes in one transaction; a refusal is caught inside
            # it, so the failure it counted commits.
            with transaction.atomic():
                try:
                    amr = services.code_verify(
                        user=user,
                        method=method,
                        code=form.cleaned_data["code"],
                        purpose=code_purpose(attempt, method),
                        binding=attempt.binding if method in services.CODE_METHODS else "",
                    )
                except services.MFAError as exc:
                    error, status = exc.message, (429 if isinstance(exc, services.SecondFactorLocked) else 400)
                else:
                    try:
                        return HttpResponseRedirect(_continue(request, attempt, amr=amr, method=method))
                    except pipeline.LoginExpired:
                        return HttpResponseRedirect(reverse("accounts:login") + "?reason=expired")
        else:
            error, status = "Please enter the code.", 400
    locked_until = selectors.locked_until(user=user)
    return render(
        request,
        "mfa/login_step.html",
        {
            "method": method,
            "method_label": selectors.METHOD_LABELS.get(method, ""),
            "others": _method_choices([m for m in methods if m not in (method, "recovery")]),
            "has_recovery": "recovery" in methods and method != "recovery",
            "form": form,
            "error": error,
            "verified_address": verified_address,
            "sent_to": user.masked_email if verified_address else "",
            "challenge": (
                _challenge_info(
                    user=user, method=method, purpose=code_purpose(attempt, method), binding=attempt.binding
                )
                if method in services.CODE_METHODS
                else None
            ),
            "locked_until": locked_until,
        },
        status=status,
    )


@require_POST
def login_send_code_view(request: HttpRequest) -> HttpResponse:
    paused = _paused_or_restart(request)
    if isinstance(paused, HttpResponse):
        return paused
    method = request.POST.get("method", "")
    if method not in ("sms", "email") or method not in (paused.waiting.get("methods") or []):
        raise Http404
    _send_code(
        request,
        user=paused.user,
        method=method,
        purpose=code_purpose(paused, method),
        binding=paused.binding,
    )
    return HttpResponseRedirect(reverse("mfa:login_step") + "?" + urlencode({"method": method}))


@require_POST
def login_passkey_options_view(request: HttpRequest) -> JsonResponse:
    attempt = pipeline.pending_web(request)
    if attempt is None or "webauthn" not in (attempt.waiting.get("methods") or []):
        return _json_error("Your sign-in has expired. Please start again.", "login_expired", 401)
    try:
        options = services.webauthn_begin_assertion(user=attempt.user, purpose="login", binding=attempt.binding)
    except services.MFAError as exc:
        return _json_error(exc.message, exc.code, exc.status)
    return JsonResponse(options)


@require_POST
def login_passkey_verify_view(request: HttpRequest) -> JsonResponse:
    attempt = pipeline.pending_web(request)
    if attempt is None or "webauthn" not in (attempt.waiting.get("methods") or []):
        return _json_error("Your sign-in has expired. Please start again.", "login_expired", 401)
    body = _json_body(request)
    try:
        amr = services.webauthn_finish_assertion(
            user=attempt.user, credential=body.get("credential") or {}, purpose="login", binding=attempt.binding
        )
    except services.SecondFactorLocked as exc:
        return _json_error(exc.message, exc.code, exc.status)
    except services.MFAError as exc:
        return _json_error(exc.message, "invalid_credential", 400)
    # The form's "remember this device" box travels in the JSON body of a passkey sign-in.
    attempt.remember_device = bool(body.get("remember_device"))
    try:
        return JsonResponse({"redirect": _continue(request, attempt, amr=amr, method="webauthn")})
    except pipeline.LoginExpired as exc:
        return _json_error(exc.message, exc.code, exc.status)


@require_POST
def login_cancel_view(request: HttpRequest) -> HttpResponse:
    pipeline.abandon(request)
    return HttpResponseRedirect(reverse("accounts:login"))


# --- Re-authentication: the one page for every "confirm it's you" (accounts.authn) -----------------


def _reauth_level(request: HttpRequest) -> authn.Level:
    return "mfa" if (request.POST.get("level") or request.GET.get("level")) == "mfa" else "password"


def _reauth_methods(user: User, level: authn.Level) -> list[str]:
    """The factors the page offers; at level mfa, a code to the verified address when none is enrolled."""
    methods = list(selectors.methods_for(user=user))
    if level == "mfa" and not methods and selectors.verified_address_code_allowed(user=user, purpose="reauth"):
        return ["email"]
    return methods


def _reauth_done(request: HttpRequest, *, user: User, method: str, amr: str) -> HttpResponse:
    authn.session_authenticated(request, amr=[amr], method=method, user=user)
    next_url = safe_next(request)
    hold = request.POST.get("hold") or request.GET.get("hold") or ""
    item = authn.held_submission(request, hold) if hold else None
    if item is not None:
        return render(
            request,
            "mfa/reauth_continue.html",
            {"action": item["path"], "hold": hold, "field": authn.HOLD_FIELD},
        )
    return HttpResponseRedirect(next_url)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reauth_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    user = request.user
    level = _reauth_level(request)
    resume = request.GET.get("resume", "")
    if resume and authn.is_recently_authenticated(request, level=level) and authn.held_submission(request, resume):
        item = authn.held_submission(request, resume) or {}
        return render(
            request, "mfa/reauth_continue.html", {"action": item["path"], "hold": resume, "field": authn.HOLD_FIELD}
        )
    methods = _reauth_methods(user, level)
    kinds = methods if level == "mfa" else ["password", *methods]
    kind = request.POST.get("kind") or request.GET.get("method") or kinds[0] if kinds else ""
    if kind not in kinds:
        kind = kinds[0] if kinds else ""
    password_form = PasswordReauthForm(request.POST if kind == "password" and request.method == "POST" else None)
    code_form = CodeForm(request.POST if kind != "password" and request.method == "POST" else None)
    error = ""
    status = 200
    if request.method == "POST" and kind == "password":
        if password_form.is_valid() and user.has_usable_password():
            # The login page's own check: rate limit, lockout, CAPTCHA threshold, audit.
            check = account_services.password_check(
                request=request,
                email=user.email,
                password=password_form.cleaned_data["password"],
                user=user,
                captcha=False,
                failure_event=EventType.REAUTHENTICATED,
            )
            if check.ok:
                return _reauth_done(request, user=user, method="password", amr="pwd")
            if check.status == "locked":
                account_services.session_logout(request=request)
                return HttpResponseRedirect(reverse("accounts:login") + "?reason=ended")
            error, status = "That password is not correct.", 400
            if check.status == "rate_limited":
                error, status = "Too many attempts. Please wait a minute and try again.", 429
        else:
            error, status = "That password is not correct.", 400
    elif request.method == "POST" and kind and kind != "webauthn":
        if code_form.is_valid():
            try:
                amr = services.code_verify(
                    user=user, method=kind, code=code_form.cleaned_data["code"], purpose="reauth"
                )
            except services.SecondFactorLocked as exc:
                error, status = exc.message, 429
            except services.MFAError as exc:
                error, status = exc.message, 400
            else:
                return _reauth_done(request, user=user, method=kind, amr=amr)
        else:
            error, status = "Please enter the code.", 400
    hold = request.POST.get("hold") or request.GET.get("hold") or ""
    return render(
        request,
        "mfa/reauth.html",
        {
            "kind": kind,
            "kind_label": selectors.METHOD_LABELS.get(kind, "Password"),
            "methods": _method_choices(methods),
            "password_allowed": level == "password",
            "level": level,
            "password_form": password_form,
            "code_form": code_form,
            "error": error,
            "next": safe_next(request),
            "hold": hold if authn.held_submission(request, hold) else "",
            "challenge": _challenge_info(user=user, method=kind, purpose="reauth")
            if kind in services.CODE_METHODS
            else None,
        },
        status=status,
    )


@login_required
@require_POST
def reauth_send_code_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    method = request.POST.get("method", "")
    level = _reauth_level(request)
    if method not in ("sms", "email") or method not in _reauth_methods(request.user, level):
        raise Http404
    _send_code(request, user=request.user, method=method, purpose="reauth")
    params = {"method": method, "next": safe_next(request)}
    if level == "mfa":
        params["level"] = level
    if request.POST.get("hold"):
        params["hold"] = request.POST["hold"]
    return HttpResponseRedirect(reverse("mfa:reauth") + "?" + urlencode(params))


@login_required
@require_POST
def reauth_passkey_options_view(request: HttpRequest) -> JsonResponse:
    try:
        return JsonResponse(services.webauthn_begin_assertion(user=request.user, purpose="reauth"))
    except services.MFAError as exc:
        return _json_error(exc.message, exc.code, exc.status)


@login_required
@require_POST
def reauth_passkey_verify_view(request: HttpRequest) -> JsonResponse:
    assert isinstance(request.user, User)
    body = _json_body(request)
    try:
        amr = services.webauthn_finish_assertion(
            user=request.user, credential=body.get("credential") or {}, purpose="reauth"
        )
    except services.SecondFactorLocked as exc:
        return _json_error(exc.message, exc.code, exc.status)
    except services.MFAError as exc:
        return _json_error(exc.message, "invalid_credential", 400)
    authn.session_authenticated(request, amr=[amr], method="webauthn")
    next_url = str(body.get("next") or "")
    hold = str(body.get("hold") or "")
    if hold and authn.held_submission(request, hold):
        return JsonResponse({"redirect": reverse("mfa:reauth") + "?" + urlencode({"resume": hold, "next": next_url})})
    safe = next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url
    return JsonResponse({"redirect": next_url if safe else reverse(settings.LOGIN_REDIRECT_URL)})


# --- Enrolment ---------------------------------------------------------------------------


def _after_enrolment(request: HttpRequest, *, user: User, amr: str) -> HttpResponse:
    if request.session.get(ENROL_REQUIRED_SESSION_KEY) and selectors.has_strong_factor(user=user):
        request.session.pop(ENROL_REQUIRED_SESSION_KEY, None)
        # The new strong factor was just proven: the session's record says so (new key, audited).
        authn.session_authenticated(request, amr=[amr], method="enrolment", user=user)
    if not selectors.confirmed_factors(user=user, method="recovery").exists():
        messages.info(request, "Now save a set of recovery codes, in case you lose your device.")
        return redirect("mfa:recovery_codes")
    return redirect("accounts:security")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def enrol_prompt_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    next_url = safe_next(request)
    if request.method == "POST":
        services.enrol_prompt_dismiss(user=request.user)
        return HttpResponseRedirect(next_url)
    if selectors.methods_for(user=request.user):
        return HttpResponseRedirect(next_url)
    return render(request, "mfa/enrol_prompt.html", {"next": next_url})


@never_cache
@login_required
@require_GET
def enrol_required_view(request: HttpRequest) -> HttpResponse:
    return render(request, "mfa/enrol_required.html")


@never_cache
@login_required
@authn.reauth_required
@require_http_methods(["GET", "POST"])
def totp_add_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    user = request.user
    device: TOTPFactor | None = None
    device_id = request.session.get(TOTP_SETUP_KEY)
    if request.method == "POST" and device_id:
        device = TOTPFactor.objects.filter(user=user, pk=device_id, confirmed=False).first()
    if device is None:
        try:
            device = services.totp_enrol_begin(request=request, user=user)
        except services.MFAError as exc:
            messages.error(request, str(exc))
            return redirect("accounts:security")
        request.session[TOTP_SETUP_KEY] = device.pk
    form = TOTPConfirmForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.totp_enrol_confirm(
                    request=request,
                    user=user,
                    device_id=device.pk,
                    code=form.cleaned_data["code"],
                    name=form.cleaned_data.get("name") or "",
                )
            except services.MFAError as exc:
                form.add_error("code", str(exc))
                status = 400
            else:
                request.session.pop(TOTP_SETUP_KEY, None)
                messages.success(request, "Your authenticator app is set up.")
                return _after_enrolment(request, user=user, amr="otp")
        else:
            status = 400
    uri = device.config_url(issuer=settings.MFA_TOTP_ISSUER)
    qr = segno.make(uri, error="m")
    secret = device.base32_secret
    return render(
        request,
        "mfa/totp_add.html",
        {
            "form": form,
            "qr_data_uri": qr.svg_data_uri(scale=5, dark="#0b3d5c"),
            "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "otpauth_uri": uri,
        },
        status=status,
    )


def _code_factor_add(request: HttpRequest, *, method: str) -> HttpResponse:
    assert isinstance(request.user, User)
    user = request.user
    step = request.POST.get("step", "")
    phone_form = PhoneForm(request.POST if method == "sms" and step == "send" else None)
    confirm_form = CodeConfirmForm(request.POST if step == "confirm" else None)
    sent_to = ""
    status = 200
    if method not in selectors.allowed_methods(user=user):
        messages.error(request, "Your role requires an authenticator app or a passkey.")
        return redirect("accounts:security")
    if step == "send":
        if method == "email" or phone_form.is_valid():
            try:
                challenge = services.code_factor_enrol_begin(
                    request=request,
                    user=user,
                    method=method,
                    phone=phone_form.cleaned_data["phone"] if method == "sms" else "",
                )
            except services.MFAError as exc:
                messages.error(request, str(exc))
                status = 400
            else:
                sent_to = challenge.sent_to
                if services.delivery_delayed(challenge=challenge):
                    messages.warning(request, f"The code to {sent_to} may arrive late. Please wait a moment.")
        else:
            status = 400
    elif step == "confirm":
        if confirm_form.is_valid():
            try:
                services.code_factor_enrol_confirm(
                    request=request,
                    user=user,
                    method=method,
                    code=confirm_form.cleaned_data["code"],
                    name=confirm_form.cleaned_data.get("name") or "",
                )
            except services.MFAError as exc:
                confirm_form.add_error("code", str(exc))
                status = 400
                sent_to = "your " + ("phone" if method == "sms" else "email address")
            else:
                messages.success(request, f"{selectors.METHOD_LABELS[method]} codes are on.")
                return _after_enrolment(request, user=user, amr=method)
        else:
            status = 400
            sent_to = "your " + ("phone" if method == "sms" else "email address")
    return render(
        request,
        "mfa/code_factor_add.html",
        {
            "method": method,
            "label": selectors.METHOD_LABELS[method],
            "phone_form": phone_form,
            "confirm_form": confirm_form,
            "sent_to": sent_to,
            "email": user.masked_email,
        },
        status=status,
    )


@never_cache
@login_required
@authn.reauth_required
@require_http_methods(["GET", "POST"])
def sms_add_view(request: HttpRequest) -> HttpResponse:
    return _code_factor_add(request, method="sms")


@never_cache
@login_required
@authn.reauth_required
@require_http_methods(["GET", "POST"])
def email_add_view(request: HttpRequest) -> HttpResponse:
    return _code_factor_add(request, method="email")


@never_cache
@login_required
@authn.reauth_required
@require_GET
def passkey_add_view(request: HttpRequest) -> HttpResponse:
    return render(request, "mfa/passkey_add.html")


def _reauth_json(request: HttpRequest) -> JsonResponse:
    return _json_error(
        "Please confirm it is you first.",
        "reauth_required",
        403,
        redirect=authn.reauth_url(next_url=reverse("mfa:passkey_add")),
    )


@login_required
@require_POST
def passkey_register_options_view(request: HttpRequest) -> JsonResponse:
    try:
        return JsonResponse(services.webauthn_begin_registration(request=request, user=request.user))
    except authn.ReauthRequired:
        return _reauth_json(request)
    except services.MFAError as exc:
        return _json_error(str(exc), "method_unavailable", 400)


@login_required
@require_POST
def passkey_register_verify_view(request: HttpRequest) -> JsonResponse:
    assert isinstance(request.user, User)
    body = _json_body(request)
    try:
        services.webauthn_finish_registration(
            request=request,
            user=request.user,
            credential=body.get("credential") or {},
            name=str(body.get("name") or ""),
        )
    except authn.ReauthRequired:
        return _reauth_json(request)
    except services.MFAError as exc:
        return _json_error(str(exc), "invalid_credential", 400)
    messages.success(request, "Your passkey is registered.")
    response = _after_enrolment(request, user=request.user, amr="hwk")
    return JsonResponse({"redirect": response["Location"]})


@never_cache
@login_required
@authn.reauth_required
@require_http_methods(["GET", "POST"])
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    user = request.user
    if request.method == "POST":
        if not [m for m in selectors.methods_for(user=user) if m != "recovery"]:
            messages.error(request, "Add an authenticator app, a passkey or codes by text or email first.")
            return redirect("accounts:security")
        codes = services.recovery_codes_generate(request=request, user=user)
        return render(request, "mfa/recovery_codes.html", {"codes": codes})
    current = selectors.confirmed_factors(user=user, method="recovery").first()
    return render(request, "mfa/recovery_codes.html", {"codes": None, "current": current})


# --- Management on /security/ ------------------------------------------------------------


@login_required
@authn.reauth_required
@require_POST
def factor_remove_view(request: HttpRequest, method: str, device_id: int) -> HttpResponse:
    assert isinstance(request.user, User)
    try:
        services.factor_remove(request=request, user=request.user, method=method, device_id=device_id)
    except services.FactorNotFound as exc:
        raise Http404 from exc
    except services.MFAError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The factor has been removed.")
    return redirect("accounts:security")


@login_required
@require_POST
def factor_rename_view(request: HttpRequest, method: str, device_id: int) -> HttpResponse:
    assert isinstance(request.user, User)
    form = RenameForm(request.POST)
    if form.is_valid():
        try:
            services.factor_rename(
                user=request.user, method=method, device_id=device_id, name=form.cleaned_data["name"]
            )
        except services.FactorNotFound as exc:
            raise Http404 from exc
        except services.MFAError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Renamed.")
    else:
        messages.error(request, "Please enter a name (up to 64 characters).")
    return redirect("accounts:security")


@login_required
@authn.reauth_required
@require_POST
def preferred_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    form = PreferredForm(request.POST)
    if form.is_valid():
        try:
            services.preferred_set(request=request, user=request.user, method=form.cleaned_data["method"])
        except services.MFAError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Your preferred method has been changed.")
    return redirect("accounts:security")
