"""The provider's endpoints: discovery, pushed authorization requests (RFC 9126), authorization
(login, step-up, consent), introspection, RP-initiated logout, and the "connected apps" page.

The token, revocation and userinfo endpoints are django-oauth-toolkit's own views, driven by
idp.validator.Validator.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import View
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.oauth2_backends import _add_iss_to_redirect
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import AuthorizationView, IntrospectTokenView, RPInitiatedLogoutView
from oauth2_provider.views import TokenView as DOTTokenView
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.openid.connect.core import exceptions as oidc_errors

from accounts import services as account_services
from accounts.authn import ACR_MFA, ACR_PASSWORD, ACR_VALUES, SessionAuth, reauth_url, session_auth
from accounts.models import User
from audit.events import EventType, Outcome
from audit.services import record
from core import dpop
from idp import client_auth, conf, par, selectors, services
from idp.models import AccessToken, Client, IDToken
from idp.scopes import ClientScopes
from idp.tokens import InvalidProviderToken, LoginContext, id_token_decode

logger = logging.getLogger(__name__)

# Session key: authorize requests whose prompt=login / max_age / acr_values step was started,
# by request fingerprint -> when. A return after a re-authentication at or after that moment
# satisfies the request once, so re-authentication never loops.
_STEP_KEY = "idp_reauth_started"


def _fingerprint(request: HttpRequest) -> str:
    items = sorted((k, v) for k in request.GET for v in request.GET.getlist(k))
    return hashlib.sha256(urlencode(items).encode()).hexdigest()[:32]


def scope_descriptions(scopes: list[str]) -> list[tuple[str, str]]:
    every = ClientScopes().get_all_scopes()
    return [(scope, every.get(scope, scope)) for scope in scopes]


@method_decorator(never_cache, name="dispatch")
class AuthorizeView(AuthorizationView):
    """GET /o/authorize/: validates the request, then login, step-up and consent, then the code."""

    template_name = "idp/consent.html"
    oauth2_data: dict[str, Any]
    # A pushed request being served (idp.par): its interaction handle and the URL that resumes it.
    par_handle: str = ""
    par_pushed: par.Pushed | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Not DOT's LoginRequiredMixin: prompt=none must answer login_required without a page.
        self.oauth2_data = {}
        self.par_handle = ""
        self.par_pushed = None
        if request.method == "POST" and not request.user.is_authenticated:
            return redirect_to_login(reverse("accounts:login"))
        return View.dispatch(self, request, *args, **kwargs)

    # -- pushed authorization requests (RFC 9126) -------------------------------------------

    def _par_url(self) -> str:
        query = urlencode({"client_id": self.par_pushed.client_id if self.par_pushed else "", "par": self.par_handle})
        return reverse("oauth2_provider:authorize") + "?" + query

    def _own_url(self, request: HttpRequest) -> str:
        """The URL that comes back to this request (the interaction's, for a pushed one)."""
        return self._par_url() if self.par_handle else request.get_full_path()

    def _par_refused(self, request: HttpRequest, client_id: str, description: str) -> HttpResponse:
        client = Client.objects.filter(client_id=client_id).first() if client_id else None
        record(
            type=EventType.OAUTH_AUTHORIZATION_REFUSED,
            outcome=Outcome.DENIED,
            user=request.user if request.user.is_authenticated else None,
            reason="invalid_request_uri",
            details={"client_id": client_id[:200], "client": client.name if client else ""},
        )
        error = oauth2_errors.InvalidRequestFatalError(description=description)
        error.error = "invalid_request_uri"
        return self.render_to_response({"error": error}, status=400)

    def _par_expand(self, request: HttpRequest, handle_param: str | None = None) -> HttpResponse | None:
        """Replaces the request's query by the pushed parameters (a request_uri, taken once, or
        a running interaction); refuses a request that must be pushed and was not. None: go on."""
        client_id = request.GET.get("client_id", "")
        request_uri = request.GET.get("request_uri")
        handle = handle_param if handle_param is not None else request.GET.get("par")
        if request_uri is not None:
            pushed = par.take(request_uri, client_id=client_id)
            if pushed is None:
                return self._par_refused(
                    request, client_id, "This sign-in link was already used or has expired. Go back to the app."
                )
            self.par_handle = par.interaction_start(pushed)
        elif handle:
            pushed = par.interaction(handle, client_id=client_id)
            if pushed is None:
                return self._par_refused(
                    request, client_id, "This sign-in request has expired or was completed. Go back to the app."
                )
            self.par_handle = handle
        else:
            client = Client.objects.filter(client_id=client_id).only("fapi", "require_par").first()
            if client is not None and client.par_required:
                return self._par_refused(
                    request, client_id, "This app must send its sign-in request to the bank first (PAR)."
                )
            return None
        self.par_pushed = pushed
        query = urlencode(sorted(pushed.params.items()))
        request.META["QUERY_STRING"] = query
        from django.http import QueryDict

        request.GET = QueryDict(query)
        return None

    # -- responses --------------------------------------------------------------------------

    def redirect(self, redirect_to: str, application: Any) -> HttpResponse:
        # RFC 9207: `iss` in every authorization response, errors included.
        response = super().redirect(_add_iss_to_redirect(redirect_to, conf.issuer()), application)
        if application is not None and self._after_portal_form():
            # Chromium applies CSP form-action ('self') to every redirect that follows a form
            # submission (login, second factor, consent), so a 302 to the client's origin would be
            # blocked: hand the response over with a page that navigates there (no script needed).
            return render(
                self.request,
                "idp/redirect.html",
                {"url": response["Location"], "application": application},
            )
        return response

    def _after_portal_form(self) -> bool:
        """This response ends a chain that began with a form of the portal (a POST here, or a
        navigation the browser marks same-origin: the redirect after the login or reauth form)."""
        if self.request.method == "POST":
            return True
        return self.request.headers.get("Sec-Fetch-Site") == "same-origin"

    def _error(
        self,
        error_cls: type[oauth2_errors.OAuth2Error],
        credentials: dict[str, Any],
        application: Client,
        description: str | None = None,
    ) -> HttpResponse:
        error = error_cls(description=description, state=credentials.get("state"))
        error.redirect_uri = credentials["redirect_uri"]
        record(
            type=EventType.OAUTH_AUTHORIZATION_REFUSED,
            outcome=Outcome.DENIED,
            user=self.request.user if self.request.user.is_authenticated else None,
            reason=error.error,
            details={"client_id": application.client_id, "client": application.name},
        )
        return self.error_response(OAuthToolkitError(error=error), application)

    def create_authorization_response(
        self, request: HttpRequest, scopes: str, credentials: dict[str, Any], allow: bool
    ) -> Any:
        auth = session_auth(request)
        if auth is not None:
            credentials["idp_login"] = LoginContext(sid=auth.sid, auth_time=auth.auth_time, amr=auth.amr)
        # RFC 9449 10: the code is bound to a DPoP key named by dpop_jkt (or the PAR request's proof).
        jkt = self.par_pushed.dpop_jkt if self.par_pushed is not None else ""
        credentials["idp_dpop_jkt"] = jkt or str(request.GET.get("dpop_jkt", ""))[:64]
        if self.par_handle and not par.interaction_end(self.par_handle):
            from oauth2_provider.exceptions import OAuthToolkitError as _ToolkitError

            error = oauth2_errors.InvalidRequestError(
                description="This sign-in request was already completed.", state=credentials.get("state")
            )
            raise _ToolkitError(error=error, redirect_uri=credentials.get("redirect_uri"))
        return super().create_authorization_response(
            request=request, scopes=scopes, credentials=credentials, allow=allow
        )

    # -- GET ----------------------------------------------------------------------------------

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = self._par_expand(request)
        if refused is not None:
            return refused
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        application = Client.objects.get(client_id=credentials["client_id"])
        if credentials.get("response_type") != "code":
            return self._error(oauth2_errors.UnsupportedResponseTypeError, credentials, application)
        if request.GET.get("code_challenge_method") != "S256" or not request.GET.get("code_challenge"):
            return self._error(
                oauth2_errors.InvalidRequestError,
                credentials,
                application,
                'PKCE with code_challenge_method "S256" is required.',
            )
        prompt = set(request.GET.get("prompt", "").split())
        silent = "none" in prompt
        try:
            max_age = int(request.GET["max_age"]) if request.GET.get("max_age", "") != "" else None
        except ValueError:
            return self._error(
                oauth2_errors.InvalidRequestError, credentials, application, "max_age must be a number of seconds."
            )
        if max_age is not None and max_age < 0:
            return self._error(
                oauth2_errors.InvalidRequestError, credentials, application, "max_age must not be negative."
            )
        wanted_acr = [v for v in request.GET.get("acr_values", "").split() if v in ACR_VALUES]

        auth = session_auth(request)
        if auth is None and request.headers.get("Sec-Fetch-Site") == "cross-site":
            # The session cookie is SameSite=Strict: a browser arriving from another site's link
            # does not send it. One same-origin hop (a page, no script) lets it, so a signed-in
            # user is not asked to sign in again (nor told login_required for prompt=none).
            return render(
                request,
                "idp/redirect.html",
                {"url": self._own_url(request), "application": application, "bounce": True},
            )
        if auth is None:
            if silent:
                return self._error(oidc_errors.LoginRequired, credentials, application)
            # A fresh login satisfies prompt=login and max_age: drop prompt so it is not asked twice.
            return self._to_login(request)

        step = self._step_up_needed(request, auth, prompt=prompt, max_age=max_age, wanted_acr=wanted_acr)
        if step is not None:
            if silent:
                silent_error = oidc_errors.InteractionRequired if step == "mfa" else oidc_errors.LoginRequired
                return self._error(silent_error, credentials, application)
            request.session.setdefault(_STEP_KEY, {})
            started = dict(request.session[_STEP_KEY])
            started[_fingerprint(request)] = timezone.now().timestamp()
            request.session[_STEP_KEY] = dict(list(started.items())[-8:])
            return HttpResponseRedirect(
                reauth_url(
                    next_url=self._own_url(request), level="mfa" if step == "mfa" else "password", max_age=max_age
                )
            )

        assert isinstance(request.user, User)
        needs_consent = not application.trusted and (
            "consent" in prompt or not services.consent_covers(user=request.user, client=application, scopes=scopes)
        )
        if needs_consent and silent:
            return self._error(oidc_errors.ConsentRequired, credentials, application)
        if not needs_consent:
            services.consent_record(user=request.user, client=application, scopes=scopes, shown=False)
            try:
                uri, _headers, _body, _status = self.create_authorization_response(
                    request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
                )
            except OAuthToolkitError as error:
                return self.error_response(error, application)
            return self.redirect(uri, application)

        self.oauth2_data = {
            "application": application,
            "client_id": credentials["client_id"],
            "redirect_uri": credentials["redirect_uri"],
            "response_type": credentials["response_type"],
            "state": credentials.get("state"),
            "scopes": scopes,
            "code_challenge": credentials.get("code_challenge"),
            "code_challenge_method": credentials.get("code_challenge_method"),
            "nonce": credentials.get("nonce"),
        }
        form = self.get_form(self.get_form_class())
        return self.render_to_response(
            {
                "form": form,
                "par_handle": self.par_handle,
                "application": application,
                "scopes": scope_descriptions(scopes),
                "redirect_host": credentials["redirect_uri"].split("/")[2]
                if "//" in credentials["redirect_uri"]
                else "",
            }
        )

    def _to_login(self, request: HttpRequest) -> HttpResponse:
        if self.par_handle and self.par_pushed is not None:
            # A fresh login satisfies prompt=login: drop it from the pushed request (kept in Redis).
            pushed = self.par_pushed
            prompt_left = [p for p in pushed.params.get("prompt", "").split() if p not in ("login", "none")]
            pushed.params.pop("prompt", None)
            if prompt_left:
                pushed.params["prompt"] = " ".join(prompt_left)
            par.interaction_update(self.par_handle, pushed)
            return redirect_to_login(self._par_url(), resolve_url(settings.LOGIN_URL))
        params = [(k, v) for k in request.GET for v in request.GET.getlist(k) if k != "prompt"]
        prompt = [p for p in request.GET.get("prompt", "").split() if p not in ("login", "none")]
        if prompt:
            params.append(("prompt", " ".join(prompt)))
        next_url = request.path + "?" + urlencode(params)
        return redirect_to_login(next_url, resolve_url(settings.LOGIN_URL))

    def _step_up_needed(
        self, request: HttpRequest, auth: SessionAuth, *, prompt: set[str], max_age: int | None, wanted_acr: list[str]
    ) -> str | None:
        """ "password"/"mfa" when this request needs a re-authentication first, else None."""
        started = (request.session.get(_STEP_KEY) or {}).get(_fingerprint(request))
        if started is not None and auth.auth_time.timestamp() >= float(started) - 1:
            # Back from the re-authentication this request asked for: satisfied, once. If the
            # user could not reach the level asked (no second factor), the ID token says so (acr).
            pending = dict(request.session.get(_STEP_KEY) or {})
            pending.pop(_fingerprint(request), None)
            request.session[_STEP_KEY] = pending
            return None
        mfa_wanted = bool(wanted_acr) and ACR_PASSWORD not in wanted_acr and ACR_MFA in wanted_acr
        if mfa_wanted and auth.acr != ACR_MFA:
            return "mfa"
        if "login" in prompt or (max_age is not None and auth.age_seconds() > max_age):
            return "mfa" if auth.acr == ACR_MFA or mfa_wanted else "password"
        return None

    # -- POST (the consent form) -----------------------------------------------------------

    def form_valid(self, form: Any) -> HttpResponse:
        client = Client.objects.filter(client_id=form.cleaned_data.get("client_id")).first()
        user = self.request.user
        if client is None or not isinstance(user, User) or session_auth(self.request) is None:
            return redirect_to_login(reverse("accounts:login"))
        handle = self.request.POST.get("par", "")
        if handle or client.par_required:
            # The consent form of a pushed request: its parameters come from Redis, and the hidden
            # fields the browser sent back must be those.
            self.request.GET = self.request.GET.copy()
            self.request.GET["client_id"] = client.client_id
            refused = self._par_expand(self.request, handle_param=handle)
            if refused is not None:
                return refused
            pushed = self.par_pushed
            if pushed is None:
                return self._par_refused(self.request, client.client_id, "This app must use PAR.")
            for name in ("redirect_uri", "state", "code_challenge", "code_challenge_method", "nonce", "response_type"):
                if str(form.cleaned_data.get(name) or "") != pushed.params.get(name, ""):
                    return self._par_refused(self.request, client.client_id, "The sign-in request was changed.")
        scopes = (form.cleaned_data.get("scope") or "").split()
        if form.cleaned_data.get("allow"):
            services.consent_record(user=user, client=client, scopes=scopes, shown=True)
        else:
            services.consent_denied(user=user, client=client, scopes=scopes)
        return super().form_valid(form)


# --- Token endpoint ------------------------------------------------------------------------------


class TokenView(DOTTokenView):
    """POST /o/token/: django-oauth-toolkit's token endpoint. After a token is issued DOT reads
    the access token row back only to hand it to its `app_authorized` signal; with nobody
    listening (the portal does not) that SELECT is skipped. An error raised while the tokens are
    saved (a code spent meanwhile by another request) reaches here without oauthlib's default
    headers: every answer is JSON and never cached (RFC 6749 5.1, 5.2)."""

    @method_decorator(sensitive_post_parameters("password", "client_secret"))
    def authorization_flow_token_response(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if app_authorized.has_listeners():
            return super().authorization_flow_token_response(request, *args, **kwargs)  # type: ignore[no-any-return]
        _url, headers, body, status = self.create_token_response(request)
        response = HttpResponse(content=body, status=status, content_type="application/json")
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        for name, value in headers.items():
            response[name] = value
        return response


# --- Pushed authorization requests (RFC 9126) ---------------------------------------------------

# Parameters of the push that are client authentication, never part of the authorization request.
_AUTH_PARAMS = {"client_secret", "client_assertion", "client_assertion_type"}


def _oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@method_decorator(csrf_exempt, name="dispatch")
class PushedAuthorizationView(View):
    """POST /o/par/: authenticates the client as the token endpoint does (secret, private_key_jwt,
    or a public client's client_id), validates the request with oauthlib's authorization-endpoint
    validation (client, redirect_uri, response_type, scope) plus the portal's PKCE S256 rule, checks
    a DPoP proof if one is sent (the code is then bound to its key), and answers a request_uri."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from oauthlib.common import Request as OauthlibRequest
        from oauthlib.common import urlencode as oauthlib_urlencode

        from idp.validator import Validator, dpop_header

        core = self.get_core()
        params = {key: request.POST.get(key, "") for key in request.POST}
        if any(len(request.POST.getlist(key)) > 1 for key in request.POST):
            return _oauth_error("invalid_request", "A parameter is repeated.")
        headers = core.extract_headers(request)
        endpoint = conf.issuer() + reverse("oauth2_provider:par")
        oauth_request = OauthlibRequest(
            endpoint, http_method="POST", body=oauthlib_urlencode(list(params.items())), headers=headers
        )
        validator = Validator()
        if validator.client_authentication_required(oauth_request):
            authenticated = validator.authenticate_client(oauth_request)
        else:
            authenticated = validator.authenticate_client_id(oauth_request.client_id, oauth_request)
        client = oauth_request.client if authenticated else None
        if not isinstance(client, Client):
            return _oauth_error("invalid_client", "Client authentication failed.", status=401)
        if "request_uri" in params or "request" in params:
            return _oauth_error("invalid_request", "A pushed request cannot itself name a request_uri or request.")
        if not params.get("redirect_uri"):
            return _oauth_error("invalid_request", "redirect_uri is required in the pushed request.")

        dpop_jkt = params.get("dpop_jkt", "")
        proof = dpop_header(oauth_request)
        if proof is not None:
            try:
                checked = dpop.verify_proof(proof, htm="POST", htu=endpoint)
            except dpop.DPoPError as exc:
                nonce = {"DPoP-Nonce": dpop.nonce_issue()} if dpop.nonce_required() else None
                return _oauth_error(exc.error, exc.description, headers=nonce)
            if dpop_jkt and dpop_jkt != checked.jkt:
                return _oauth_error("invalid_dpop_proof", "dpop_jkt does not match the DPoP proof's key.")
            dpop_jkt = checked.jkt

        pushed_params = {k: v for k, v in params.items() if k not in _AUTH_PARAMS}
        pushed_params["client_id"] = client.client_id
        authorize = (
            conf.issuer() + reverse("oauth2_provider:authorize") + "?" + urlencode(sorted(pushed_params.items()))
        )
        try:
            _scopes, credentials = core.server.validate_authorization_request(
                authorize, http_method="GET", body="", headers=headers
            )
        except (oauth2_errors.FatalClientError, oauth2_errors.OAuth2Error) as exc:
            return _oauth_error(exc.error, exc.description or "The authorization request is not valid.")
        if credentials.get("response_type") != "code":
            return _oauth_error("unsupported_response_type", 'Only response_type "code" is offered.')
        if pushed_params.get("code_challenge_method") != "S256" or not pushed_params.get("code_challenge"):
            return _oauth_error("invalid_request", 'PKCE with code_challenge_method "S256" is required.')
        request_uri, expires_in = par.push(
            par.Pushed(client_id=client.client_id, params=pushed_params, dpop_jkt=dpop_jkt)
        )
        response = JsonResponse({"request_uri": request_uri, "expires_in": expires_in}, status=201)
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def get_core() -> Any:
        from oauth2_provider.views.mixins import OAuthLibMixin

        return OAuthLibMixin.get_oauthlib_core()


# --- Discovery -------------------------------------------------------------------------------


@require_GET
def discovery_view(request: HttpRequest) -> JsonResponse:
    """OpenID Provider Metadata (OpenID Connect Discovery 1.0; also RFC 8414's fields)."""
    base = conf.issuer()

    def url(name: str) -> str:
        return base + reverse(name)

    data = {
        "issuer": base,
        "authorization_endpoint": url("oauth2_provider:authorize"),
        "token_endpoint": url("oauth2_provider:token"),
        "userinfo_endpoint": url("oauth2_provider:user-info"),
        "jwks_uri": base + reverse("jwks"),
        "revocation_endpoint": url("oauth2_provider:revoke-token"),
        "introspection_endpoint": url("oauth2_provider:introspect"),
        "end_session_endpoint": url("oauth2_provider:rp-initiated-logout"),
        "pushed_authorization_request_endpoint": url("oauth2_provider:par"),
        "require_pushed_authorization_requests": False,  # per client: FAPI 2.0 clients, --require-par
        "scopes_supported": list(ClientScopes().get_all_scopes()),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": list(client_auth.ALGORITHMS),
        "dpop_signing_alg_values_supported": dpop.algorithms(),
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "at_hash",
            "email",
            "email_verified",
        ],
        "acr_values_supported": list(ACR_VALUES),
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "access_token_signing_alg_values_supported": ["RS256", "ES256"],
        "service_documentation": base + "/api/docs/",
    }
    response = JsonResponse(data)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=300"
    return response


# --- Introspection (RFC 7662) ------------------------------------------------------------------


@method_decorator(csrf_exempt, name="dispatch")
class IntrospectView(IntrospectTokenView):
    """POST only; a token that is revoked, expired or whose login ended is {"active": false}, and so
    is a token issued to another client, unless the caller is one of `IDP_INTROSPECTION_CLIENTS`
    (RFC 7662 4: the caller learns only what it is allowed to know; without this any registered
    client could learn the subject, scopes and login of any token it got hold of)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return JsonResponse({"error": "invalid_request", "error_description": "Use POST."}, status=405)

    def authenticate_client(self, request: HttpRequest) -> bool:
        # DOT's own client authentication (OAuthLibCore.authenticate_client), keeping the client
        # it authenticated: the answer depends on who asks.
        from oauthlib.common import Request as OauthlibRequest

        core = self.get_oauthlib_core()
        uri, http_method, body, headers = core._extract_params(request)
        oauth_request = OauthlibRequest(uri, http_method, body, headers)
        if not core.server.request_validator.authenticate_client(oauth_request):
            return False
        request.idp_introspecting_client = oauth_request.client  # type: ignore[attr-defined]
        return True

    def verify_request(self, request: HttpRequest) -> Any:
        # DOT's fallback: a bearer token with the `introspection` scope; its client is the caller.
        valid, oauth_request = super().verify_request(request)
        if valid:
            request.idp_introspecting_client = oauth_request.client  # type: ignore[attr-defined]
        return valid, oauth_request

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        caller = getattr(request, "idp_introspecting_client", None)
        return self.get_token_response(request.POST.get("token"), caller=caller)

    @staticmethod
    def get_token_response(token_value: str | None = None, caller: Client | None = None) -> JsonResponse:
        if not token_value:
            return JsonResponse(
                {"error": "invalid_request", "error_description": "Token parameter is missing."}, status=400
            )
        checksum = hashlib.sha256(token_value.encode("utf-8")).hexdigest()
        token = AccessToken.objects.select_related("user", "application").filter(token_checksum=checksum).first()
        if token is None or not token.is_valid() or services.token_revoked_reason(jti=token.jti, sid=token.sid):
            return JsonResponse({"active": False})
        if not services.may_introspect(caller, token):
            return JsonResponse({"active": False})  # as for an unknown token: nothing about it leaks
        data: dict[str, Any] = {
            "active": True,
            "scope": token.scope,
            "client_id": token.application.client_id if token.application else "",
            "token_type": "Bearer",
            "exp": int(token.expires.timestamp()),
            "iat": int(token.created.timestamp()),
            "iss": conf.issuer(),
            "aud": conf.audience(),
            "jti": token.jti,
            "sub": str(token.user.public_id)
            if token.user
            else (token.application.client_id if token.application else ""),
        }
        if token.sid:
            data["sid"] = token.sid
        if token.dpop_jkt:  # RFC 9449 6.2: the resource server checks the proof against cnf.jkt
            data["token_type"] = "DPoP"  # noqa: S105 (a token type, not a secret)
            data["cnf"] = {"jkt": token.dpop_jkt}
        return JsonResponse(data)


# --- RP-initiated logout ------------------------------------------------------------------------


class LogoutView(RPInitiatedLogoutView):
    """OpenID Connect RP-Initiated Logout 1.0: ends the portal login itself (audit, revocation of
    every token of the login, back-channel logout to the other clients)."""

    template_name = "idp/logout_confirm.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and request.headers.get("Sec-Fetch-Site") == "cross-site":
            # As at the authorization endpoint: the SameSite=Strict session cookie comes only
            # with a same-origin navigation, and without it there would be no session to end.
            return render(request, "idp/redirect.html", {"url": request.get_full_path(), "bounce": True})
        return super().get(request, *args, **kwargs)

    def validate_logout_request_user(self, id_token_hint: str | None, client_id: str | None) -> Any:
        from oauth2_provider.exceptions import ClientIdMissmatch, InvalidIDTokenError

        if not id_token_hint:
            return None
        try:
            claims = id_token_decode(id_token_hint, accept_expired=True)
        except InvalidProviderToken as exc:
            raise InvalidIDTokenError() from exc
        id_token = IDToken.objects.select_related("application", "user").filter(jti=claims.get("jti")).first()
        if id_token is None:
            raise InvalidIDTokenError()
        if client_id and id_token.application and id_token.application.client_id != client_id:
            raise ClientIdMissmatch()
        return id_token

    def do_logout(
        self,
        application: Any = None,
        post_logout_redirect_uri: str | None = None,
        state: str | None = None,
        token_user: Any = None,
    ) -> HttpResponse:
        request = self.request
        if request.user.is_authenticated:
            auth = session_auth(request)
            record(
                type=EventType.OIDC_LOGOUT,
                user=request.user,
                details={"client_id": getattr(application, "client_id", ""), "sid": auth.sid if auth else ""},
            )
            account_services.session_logout(request=request)
        if post_logout_redirect_uri and application is not None:
            target = post_logout_redirect_uri
            if state:
                target += ("&" if "?" in target else "?") + urlencode({"state": state})
            response = OAuth2ResponseRedirect(target, application.get_allowed_schemes())
            if request.method == "POST":  # after the confirmation form: see AuthorizeView.redirect
                return render(request, "idp/redirect.html", {"url": response["Location"], "application": application})
            return response
        return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))


# --- Connected apps (/security/apps/) ------------------------------------------------------------


@login_required
@require_GET
def connected_apps_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    apps = selectors.connected_apps(user=request.user)
    return render(request, "idp/connected_apps.html", {"apps": apps})


@login_required
@require_POST
def connected_app_revoke_view(request: HttpRequest, client_pk: int) -> HttpResponse:
    assert isinstance(request.user, User)
    client = get_object_or_404(Client, pk=client_pk)
    if services.grant_revoke(user=request.user, client_pk=client.pk, actor=request.user):
        from django.contrib import messages

        messages.success(request, f"{client.name} can no longer use your account.")
    return HttpResponseRedirect(reverse("idp:connected_apps"))
