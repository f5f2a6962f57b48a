from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import pipeline, security, services
from accounts.authn import reauth_required
from accounts.forms import LoginForm, PasswordChangeForm, PasswordResetRequestForm, SetPasswordForm, SignupForm
from accounts.models import User, UserSession
from accounts.selectors import live_sessions
from audit.events import EventType, Outcome
from audit.selectors import events_for_user
from audit.services import record
from core.net import client_ip, safe_next

# Why a session ended, as the login page tells it.
END_REASONS = {
    "session_limit": "You were signed out because your account signed in somewhere else.",
    "ended_by_user": "That session was ended from your security page.",
    "logout": "You have been signed out.",
    "password_changed": "You were signed out because your password was changed.",
    "password_reset": "You were signed out because your password was reset.",
    "expired": "Your session reached its maximum length. Please sign in again.",
    "idle": "You were signed out after 30 minutes without activity.",
    "ended": "Your session has ended. Please sign in again.",
    "ended_by_staff": "Your session was ended by the bank.",
    "not_me": "You were signed out to protect your account.",
    "account_disabled": "Your account is disabled. Please contact the bank.",
}


def _lockout_message(check: services.PasswordCheck) -> str:
    when = check.retry_at
    if when is None:
        return "Too many attempts. Please try again later."
    minutes = max(1, round((check.retry_after_seconds or 60) / 60))
    return (
        f"Too many failed attempts. For your security, sign-in is paused. "
        f"Try again after {when:%H:%M} UTC (in about {minutes} minute{'s' if minutes != 1 else ''})."
    )


@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request))
    reason = request.GET.get("reason", "")
    notice = END_REASONS.get(reason, "")
    ip = client_ip(request)
    show_captcha = security.captcha_required(email="", ip=ip)
    status = 200
    error = ""
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        check = services.password_check(
            request=request,
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            captcha_payload=form.cleaned_data.get("altcha"),
        )
        if check.ok and check.user is not None:
            next_url = safe_next(request)
            attempt = pipeline.begin(
                request,
                user=check.user,
                # Signing in for another app of the bank (the provider's authorize endpoint sent the
                # browser here) is the "oidc" channel of the same pipeline.
                channel="oidc" if next_url.startswith(tuple(settings.LOGIN_OIDC_NEXT_PREFIXES)) else "web",
                next_url=next_url,
                password=form.cleaned_data["password"],
            )
            try:
                return HttpResponseRedirect(pipeline.web_redirect(pipeline.run(attempt)))
            except pipeline.LoginRefused as exc:
                error, status = exc.message, exc.status
        elif check.status in ("locked", "rate_limited"):
            error = _lockout_message(check)
            status = 429
        elif check.status == "captcha_required":
            show_captcha = True
            error = (
                "Please complete the check below, then sign in again."
                if not check.captcha_error or check.captcha_error == "missing"
                else "The security check did not succeed. Please try again."
            )
        elif check.status == "unverified" and check.user is not None:
            services.email_verification_resend(user=check.user)
            error = "Please verify your email address first. We have sent you a new link."
        else:
            error = "The email address or password is not correct."
            show_captcha = show_captcha or security.captcha_required(email=form.cleaned_data["email"], ip=ip)
    elif request.method == "POST":
        error = "Please enter your email address and password."
        status = 400
    response = render(
        request,
        "accounts/login.html",
        {
            "form": form,
            "error": error,
            "notice": notice,
            "show_captcha": show_captcha,
            "next": safe_next(request, default=""),
        },
        status=status,
    )
    if status == 429:
        response["Retry-After"] = "60"
    return response


@never_cache
@require_GET
def captcha_challenge_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(security.captcha_challenge())


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    services.session_logout(request=request)
    return HttpResponseRedirect(reverse("accounts:login") + "?reason=logout")


@never_cache
@require_http_methods(["GET", "POST"])
def signup_view(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if security.rate_limited(request, name="signup_ip"):
            record(type=EventType.RATE_LIMITED, outcome=Outcome.DENIED, reason="signup_ip")
            return render(
                request,
                "accounts/signup.html",
                {"form": form, "error": "Too many sign-ups from your network. Please try again in an hour."},
                status=429,
            )
        if form.is_valid():
            try:
                services.user_signup(
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["new_password1"],
                    full_name=form.cleaned_data["full_name"],
                )
            except services.AccountError:
                pass
            return redirect("accounts:signup_done")
    return render(request, "accounts/signup.html", {"form": form})


@require_GET
def signup_done_view(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signup_done.html")


@never_cache
@require_GET
def verify_email_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        services.email_verify(token=token)
    except services.AccountError as exc:
        return render(request, "accounts/verify_email.html", {"ok": False, "message": str(exc)}, status=400)
    return render(request, "accounts/verify_email.html", {"ok": True})


@never_cache
@require_http_methods(["GET", "POST"])
def password_reset_view(request: HttpRequest) -> HttpResponse:
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST":
        if security.rate_limited(request, name="password_reset_ip"):
            record(type=EventType.RATE_LIMITED, outcome=Outcome.DENIED, reason="password_reset_ip")
            return render(
                request,
                "accounts/password_reset.html",
                {"form": form, "error": "Too many requests from your network. Please try again later."},
                status=429,
            )
        if form.is_valid():
            services.password_reset_request(email=form.cleaned_data["email"])
            return redirect("accounts:password_reset_done")
    return render(request, "accounts/password_reset.html", {"form": form})


@require_GET
def password_reset_done_view(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_done.html")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view (it moves the token out of the URL before the form shows), keyed by public id."""

    template_name = "accounts/password_reset_confirm.html"
    form_class = SetPasswordForm  # type: ignore[assignment]
    success_url = reverse_lazy("accounts:password_reset_complete")
    post_reset_login = False

    def get_user(self, uidb64: str) -> User | None:  # type: ignore[override]
        try:
            public_id = force_str(urlsafe_base64_decode(uidb64))
            return User.objects.get(public_id=public_id, is_active=True)
        except (TypeError, ValueError, OverflowError, User.DoesNotExist):
            return None

    def form_valid(self, form: Any) -> HttpResponse:
        assert self.user is not None
        services.password_reset_complete(user=self.user, new_password=form.cleaned_data["new_password1"])
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(str(self.success_url))


@require_GET
def password_reset_complete_view(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_complete.html")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def password_change_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    form = PasswordChangeForm(request.user, request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        # The current password through the login's own check: its lockout and rate limit count it.
        check = services.password_check(
            request=request,
            email=request.user.email,
            password=form.cleaned_data["old_password"],
            user=request.user,
            captcha=False,
            failure_event=EventType.REAUTHENTICATED,
        )
        if check.status == "locked":
            services.session_logout(request=request)
            return HttpResponseRedirect(reverse("accounts:login") + "?reason=ended")
        if check.ok:
            services.password_change(
                request=request, user=request.user, new_password=form.cleaned_data["new_password1"]
            )
            messages.success(request, "Your password has been changed. Your other sessions have been signed out.")
            return redirect("accounts:security")
        form.add_error(
            "old_password",
            "Too many attempts. Please wait a minute and try again."
            if check.status == "rate_limited"
            else "Your current password is not correct.",
        )
        status = 429 if check.status == "rate_limited" else 200
    return render(request, "accounts/password_change.html", {"form": form}, status=status)


@never_cache
@login_required
@require_GET
def security_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    current_sid = request.session.get("sid")
    sessions = list(live_sessions(user=request.user))
    return render(
        request,
        "accounts/security.html",
        {
            "sessions": sessions,
            "current_sid": current_sid,
            "events": events_for_user(user=request.user, limit=20),
        },
    )


@login_required
@reauth_required  # ASVS 3.3.4: ending sessions asks for the credentials again after 5 minutes
@require_POST
def session_end_view(request: HttpRequest, session_id: UUID) -> HttpResponse:
    assert isinstance(request.user, User)
    try:
        services.session_end_for_user(user=request.user, session_id=str(session_id))
    except UserSession.DoesNotExist as exc:
        raise Http404 from exc
    if str(session_id) == request.session.get("sid"):
        return HttpResponseRedirect(reverse("accounts:login") + "?reason=ended_by_user")
    messages.success(request, "The session has been ended.")
    return redirect("accounts:security")


@login_required
@reauth_required  # ASVS 3.3.4: ending sessions asks for the credentials again after 5 minutes
@require_POST
def sessions_end_others_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    count = services.sessions_end_all(
        user=request.user, reason="ended_by_user", actor=request.user, except_sid=request.session.get("sid")
    )
    messages.success(request, f"{count} other session{'s' if count != 1 else ''} ended.")
    return redirect("accounts:security")
