"""Pages and endpoints of the demo relying party.

/ (who is signed in; also where the provider returns after sign-out), POST /login/ (authorization
code + PKCE, optionally asking for a second factor), /oidc/callback/, POST /logout/ (RP-initiated
logout), and POST /oidc/backchannel-logout/ (the provider ends our sessions server to server).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from rp import oidc
from rp.models import SeenLogoutToken, SignIn
from rp.tokens import TokenRejected, validate_logout_token

log = logging.getLogger("rp")

USER_KEY = "rp_user"
ID_TOKEN_KEY = "rp_id_token"  # noqa: S105 (a session key's name, not a secret)
REQUESTED_ACR_KEY = "rp_requested_acr"
# Claims kept in the local session and shown on the page.
SHOWN_CLAIMS = ("sub", "email", "email_verified", "amr", "acr", "auth_time", "sid")


def site(request: HttpRequest) -> dict[str, Any]:
    """Template context of every page."""
    return {"rp_name": settings.RP_NAME, "issuer": settings.OIDC_ISSUER}


def _callback_url() -> str:
    return f"{settings.RP_BASE_URL}/oidc/callback/"


def _problem(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(request, "rp/problem.html", {"message": message}, status=status)


def _signed_in_user(request: HttpRequest) -> dict[str, Any] | None:
    user = request.session.get(USER_KEY)
    if user is None:
        return None
    # The back-channel logout deletes the session row itself; this also covers a session whose
    # sign-in record is gone for any other reason.
    if not SignIn.objects.filter(session_key=request.session.session_key, ended_at__isnull=True).exists():
        request.session.flush()
        return None
    return dict(user)


@require_GET
@never_cache
def home(request: HttpRequest) -> HttpResponse:
    user = _signed_in_user(request)
    context: dict[str, Any] = {"user": user, "signed_out": False, "ended_by_provider": False}
    if user is None:
        # The cookie of a session the provider ended (back-channel logout) still names it.
        old_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
        context["ended_by_provider"] = bool(old_key) and (
            SignIn.objects.filter(session_key=old_key, ended_at__isnull=False).exists()
        )
    if user is None and request.GET.get("state"):
        # Back from the provider's end-session endpoint after our own sign-out.
        try:
            oidc.client().validate_logout_response(request)
            context["signed_out"] = True
        except OAuthError:
            log.info("post-logout redirect without a matching state")
    if user is not None:
        auth_time = user.get("auth_time")
        context["auth_time"] = (
            datetime.fromtimestamp(auth_time, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if isinstance(auth_time, int | float)
            else None
        )
        context["amr"] = ", ".join(str(m) for m in user.get("amr") or [])
        context["has_mfa"] = user.get("acr") == settings.OIDC_ACR_MFA
    return render(request, "rp/home.html", context)


@require_POST
def login(request: HttpRequest) -> HttpResponse:
    """Sends the browser to the provider's authorization endpoint (state, nonce and PKCE by authlib)."""
    extra: dict[str, str] = {}
    if request.POST.get("level") == "mfa":
        extra["acr_values"] = settings.OIDC_ACR_MFA
        request.session[REQUESTED_ACR_KEY] = settings.OIDC_ACR_MFA
    else:
        request.session.pop(REQUESTED_ACR_KEY, None)
    try:
        response: HttpResponse = oidc.client().authorize_redirect(request, _callback_url(), **extra)
    except (requests.RequestException, TokenRejected) as exc:
        log.warning("provider discovery failed: %s", exc)
        return _problem(request, "The bank's sign-in service cannot be reached right now. Try again later.", status=502)
    return response


def _provider_sends_iss() -> bool:
    try:
        metadata = oidc.client().load_server_metadata()
    except (requests.RequestException, TokenRejected):
        return False  # the code exchange below fails on the same cause, with its own message
    return bool(metadata.get("authorization_response_iss_parameter_supported"))


@require_GET
@never_cache
def callback(request: HttpRequest) -> HttpResponse:
    """The provider's redirect back: exchange the code, validate the ID token, open a local session."""
    issuer_param = request.GET.get("iss")
    if issuer_param is not None and issuer_param != settings.OIDC_ISSUER:
        # RFC 9207: a response from another issuer is a mix-up attempt.
        return _problem(request, "The sign-in response came from an unexpected issuer.", status=400)
    if issuer_param is None and _provider_sends_iss():
        return _problem(request, "The sign-in response does not name its issuer.", status=400)
    if request.GET.get("error"):
        error = request.GET["error"]
        if error == "access_denied":
            message = f"You did not allow {settings.RP_NAME} to sign you in."
        else:
            message = f"The bank did not sign you in ({error})."
        return _problem(request, message, status=400)
    if not request.GET.get("code") or not request.GET.get("state"):
        return _problem(request, "This sign-in link is incomplete. Start again.", status=400)
    try:
        token = oidc.client().authorize_access_token(request)
    except TokenRejected as exc:
        log.warning("ID token refused: %s", exc.reason)
        return _problem(request, "The bank's answer could not be verified, so you are not signed in.", status=400)
    except OAuthError as exc:
        log.info("sign-in refused: %s %s", exc.error, exc.description)
        return _problem(request, "This sign-in has expired or was already used. Start again.", status=400)
    except requests.RequestException as exc:
        log.warning("token endpoint failed: %s", exc)
        return _problem(request, "The bank's sign-in service cannot be reached right now. Try again later.", status=502)
    claims = token.get("userinfo")
    if not claims:
        return _problem(request, "The bank sent no identity with this sign-in.", status=400)
    requested_acr = request.session.pop(REQUESTED_ACR_KEY, None)
    if requested_acr and claims.get("acr") != requested_acr:
        return _problem(request, "The bank did not confirm a second factor, so you are not signed in.", status=403)
    if not claims.get("sid"):
        return _problem(request, "The bank's answer names no session, so single sign-out could not work.", status=400)

    # A new session key at sign-in (no fixation); the sign-in record ties it to the provider's sid.
    request.session.cycle_key()
    request.session[USER_KEY] = {name: claims[name] for name in SHOWN_CLAIMS if name in claims}
    request.session[ID_TOKEN_KEY] = token["id_token"]
    request.session.save()
    assert request.session.session_key is not None  # saved just above
    SignIn.objects.create(
        session_key=request.session.session_key,
        issuer=settings.OIDC_ISSUER,
        sid=str(claims["sid"]),
        sub=str(claims["sub"]),
        signed_in_at=timezone.now(),
    )
    log.info("signed in sub=%s sid=%s", claims["sub"], claims["sid"])
    return HttpResponseRedirect("/")


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Ends the local session, then asks the provider to end its own (RP-initiated logout)."""
    id_token = request.session.get(ID_TOKEN_KEY)
    SignIn.objects.filter(session_key=request.session.session_key).delete()
    request.session.flush()
    if not id_token:
        return HttpResponseRedirect("/")
    try:
        response: HttpResponse = oidc.client().logout_redirect(
            request,
            post_logout_redirect_uri=settings.OIDC_POST_LOGOUT_REDIRECT_URI,
            id_token_hint=id_token,
            client_id=settings.OIDC_CLIENT_ID,
        )
    except (requests.RequestException, TokenRejected, RuntimeError) as exc:
        log.warning("end-session endpoint unavailable: %s", exc)
        return _problem(
            request,
            f"You are signed out of {settings.RP_NAME}, but the bank could not be told. Sign out there too.",
            status=502,
        )
    return response


def _logout_error(description: str, *, status: int = 400, error: str = "invalid_request") -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # server-to-server: the signed logout token is the authentication, not a cookie
@require_POST
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    """OpenID Connect Back-Channel Logout 1.0 §2.5 to §2.8."""
    logout_token = request.POST.get("logout_token", "")
    if not logout_token:
        return _logout_error("logout_token is missing")
    try:
        wanted = validate_logout_token(
            logout_token,
            keys=oidc.client().jwks,
            issuer=settings.OIDC_ISSUER,
            client_id=settings.OIDC_CLIENT_ID,
            leeway=settings.OIDC_LEEWAY_SECONDS,
            jti_retention=settings.OIDC_LOGOUT_JTI_RETENTION_SECONDS,
        )
    except TokenRejected as exc:
        log.warning("logout token refused: %s", exc.reason)
        return _logout_error(exc.reason)
    except requests.RequestException as exc:
        # The keys could not be fetched: the provider retries later (it keeps the token in its outbox).
        log.warning("logout token not checked, JWKS unavailable: %s", exc)
        return _logout_error("the provider's keys cannot be fetched", status=503, error="temporarily_unavailable")

    now = timezone.now()
    with transaction.atomic():
        SeenLogoutToken.objects.filter(remember_until__lt=now).delete()
        SignIn.objects.filter(ended_at__lt=now - timedelta(days=1)).delete()
        try:
            with transaction.atomic():
                SeenLogoutToken.objects.create(
                    issuer=wanted.iss,
                    jti=wanted.jti,
                    remember_until=datetime.fromtimestamp(wanted.remember_until, tz=UTC),
                )
        except IntegrityError:
            log.warning("logout token replayed: jti=%s", wanted.jti)
            return _logout_error("this logout token was already used")
        # Only sessions that existed when the provider issued the token: a later sign-in in the
        # same provider session (same sid) is not what this token ends.
        issued_at = datetime.fromtimestamp(wanted.issued_at + settings.OIDC_LEEWAY_SECONDS, tz=UTC)
        matching = SignIn.objects.filter(issuer=wanted.iss, signed_in_at__lte=issued_at, ended_at__isnull=True)
        if wanted.sid is not None:
            matching = matching.filter(sid=wanted.sid)
        if wanted.sub is not None:
            matching = matching.filter(sub=wanted.sub)
        session_keys = list(matching.values_list("session_key", flat=True))
        Session.objects.filter(session_key__in=session_keys).delete()
        SignIn.objects.filter(session_key__in=session_keys).update(ended_at=now)
    log.info("back-channel logout sid=%s sub=%s: %d session(s) ended", wanted.sid, wanted.sub, len(session_keys))
    response = HttpResponse(status=200)
    response["Cache-Control"] = "no-store"
    return response
