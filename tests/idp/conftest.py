"""Fixtures for the provider's tests: real OAuth/OIDC client libraries (authlib,
requests-oauth2client) whose HTTP goes through a requests transport adapter into Django's test
client, so the provider runs in-process against the test PostgreSQL and Redis; the user's
browser is a Django test client that signs in through the real login page."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.test import Client as DjangoClient
from requests.structures import CaseInsensitiveDict

from accounts.models import User
from idp import services
from idp.models import Client

RP_CALLBACK = "https://rp.example/oidc/callback/"
RP_LOGOUT_DONE = "https://rp.example/"


class DjangoAdapter(requests.adapters.BaseAdapter):
    """A requests transport that hands each request to Django's test client (no network)."""

    def __init__(self, client: DjangoClient) -> None:
        super().__init__()
        self.client = client
        self.calls: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        path = url.path + (f"?{url.query}" if url.query else "")
        self.calls.append(f"{request.method} {url.path}")
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length", "content-type")
        }
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        response = self.client.generic(
            request.method or "GET",
            path,
            data=body,
            content_type=request.headers.get("Content-Type", "application/octet-stream"),
            secure=url.scheme == "https",
            headers=headers,
        )
        result = requests.Response()
        result.status_code = response.status_code
        result._content = response.content
        result.headers = CaseInsensitiveDict(dict(response.items()))
        result.url = request.url or ""
        result.request = request
        result.encoding = "utf-8"
        return result

    def close(self) -> None:
        return None


@pytest.fixture
def add_totp() -> Callable[[User], pyotp.TOTP]:
    """A confirmed authenticator app for the user; returns the app's code generator."""
    from mfa.models import TOTPFactor

    def _add(user: User) -> pyotp.TOTP:
        device = TOTPFactor(user=user, name="Phone", confirmed=True)
        device.set_key(secrets.token_hex(20))
        device.save()
        parsed = pyotp.parse_uri(device.config_url(issuer=settings.MFA_TOTP_ISSUER))
        assert isinstance(parsed, pyotp.TOTP)
        return parsed

    return _add


@pytest.fixture
def issuer() -> str:
    return str(settings.PUBLIC_BASE_URL)


@pytest.fixture
def http() -> requests.Session:
    """A relying party's backend HTTP session, wired to the provider in-process."""
    session = requests.Session()
    session.mount(settings.PUBLIC_BASE_URL, DjangoAdapter(DjangoClient(REMOTE_ADDR="198.51.100.7")))
    return session


@pytest.fixture
def discovery(http: requests.Session, issuer: str) -> dict[str, Any]:
    response = http.get(f"{issuer}/.well-known/openid-configuration")
    assert response.status_code == 200
    return dict(response.json())


@pytest.fixture
def make_oidc_client() -> Callable[..., tuple[Client, str]]:
    def _make(
        *,
        name: str = "Mortgage app",
        kind: str = "confidential",
        trusted: bool = True,
        scopes: str = "openid email offline_access read:accounts read:payments write:payments",
        backchannel_logout_uri: str = "",
        grant: str = "authorization-code",
        owner: User | None = None,
    ) -> tuple[Client, str]:
        return services.client_create(
            name=name,
            kind=kind,
            grant=grant,
            redirect_uris=[RP_CALLBACK] if grant == "authorization-code" else [],
            post_logout_redirect_uris=[RP_LOGOUT_DONE] if grant == "authorization-code" else [],
            scopes=scopes,
            trusted=trusted,
            backchannel_logout_uri=backchannel_logout_uri,
            owner=owner,
        )

    return _make


@pytest.fixture
def browser(client: DjangoClient, login: Callable[..., Any], user: User) -> DjangoClient:
    """The user's browser, signed in to the portal with a password."""
    response = login(client, user)
    assert response.status_code == 302, response.content[:500]
    return client


def follow_to_client(browser: DjangoClient, url: str, *, limit: int = 10) -> Any:
    """Follows the portal's redirects (GET) until one leaves the portal, or a page is shown."""
    response = browser.get(_local(url), secure=True)
    for _ in range(limit):
        if response.status_code not in (301, 302, 303):
            return response
        location = response["Location"]
        if location.startswith("https://rp.example") or location.startswith("http://127.0.0.1"):
            return response
        response = browser.get(_local(location), secure=True)
    raise AssertionError("too many redirects")


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def rp_session(
    client: Client, secret: str, http: requests.Session, *, scope: str = "openid email offline_access read:payments"
) -> OAuth2Session:
    """authlib's OAuth 2 client as the relying party would configure it (PKCE S256)."""
    session = OAuth2Session(
        client_id=client.client_id,
        client_secret=secret or None,
        scope=scope,
        redirect_uri=RP_CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
    )
    for prefix, adapter in http.adapters.items():
        session.mount(prefix, adapter)
    return session


def authorize(
    browser: DjangoClient, rp: OAuth2Session, discovery: dict[str, Any], **params: Any
) -> tuple[Any, str, str, str]:
    """Starts the code flow in the browser: (final response, state, code_verifier, nonce)."""
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **params
    )
    return follow_to_client(browser, url), state, verifier, nonce


class FakeLogoutReceiver:
    """A relying party's back-channel logout endpoint on loopback: refuses the first N posts."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.refuse_left = refuse_first
        self.received: list[dict[str, list[str]]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                if receiver.refuse_left > 0:
                    receiver.refuse_left -= 1
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(parse_qs(body))
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oidc/backchannel-logout/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def logout_receiver() -> Iterator[Callable[..., FakeLogoutReceiver]]:
    made: list[FakeLogoutReceiver] = []

    def _make(refuse_first: int = 0) -> FakeLogoutReceiver:
        receiver = FakeLogoutReceiver(refuse_first)
        made.append(receiver)
        return receiver

    yield _make
    for receiver in made:
        receiver.close()
