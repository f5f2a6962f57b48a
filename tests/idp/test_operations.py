"""Operations: create_oauth_client (shared/API.md), seed_demo_oauth, the admin (audited, secret
shown once), the deploy check, the OpenAPI schema's scope requirements."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
import yaml
from django.contrib.auth.hashers import check_password
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.management import CommandError, call_command
from django.test import Client as DjangoClient
from django.test import RequestFactory

from accounts.models import User
from audit.models import AuditEvent
from idp.admin import ClientAdmin
from idp.models import Client
from tests.core.test_core import _manage, _prod_env


def _run(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_oauth_client", *args, stdout=out)
    return out.getvalue().splitlines()


def test_create_oauth_client_prints_the_id_and_the_secret_once() -> None:
    lines = _run(
        "--name", "Mortgage app", "--kind", "confidential", "--grant", "authorization-code",
        "--redirect-uri", "https://mortgage.example/cb", "--scopes", "openid email read:payments",
        "--trusted", "--backchannel-logout-uri", "https://mortgage.example/bcl",
    )  # fmt: skip
    assert lines[0].startswith("client_id=") and lines[1].startswith("client_secret=")
    client = Client.objects.get(client_id=lines[0].removeprefix("client_id="))
    secret = lines[1].removeprefix("client_secret=")
    assert len(secret) >= 47 and client.client_secret != secret
    assert check_password(secret, client.client_secret)  # stored hashed, keyed hash
    assert client.client_secret.startswith("idp_keyed_sha256$")
    assert client.trusted and client.redirect_uris == "https://mortgage.example/cb"
    assert client.allowed_scopes == "openid email read:payments"
    assert client.backchannel_logout_uri == "https://mortgage.example/bcl"
    event = AuditEvent.objects.get(type="oauth.client_created")
    assert event.details["client_id"] == client.client_id
    assert secret not in str(event.details)


def test_create_oauth_client_public_has_no_secret() -> None:
    lines = _run(
        "--name",
        "Phone app",
        "--kind",
        "public",
        "--grant",
        "authorization-code",
        "--redirect-uri",
        "https://app.example/cb",
    )
    assert len(lines) == 1 and lines[0].startswith("client_id=")


def test_create_oauth_client_for_a_service(user: User) -> None:
    lines = _run(
        "--name", "payments-reader", "--kind", "confidential", "--grant", "client-credentials",
        "--scopes", "read:payments", "--user", user.email,
    )  # fmt: skip
    client = Client.objects.get(client_id=lines[0].removeprefix("client_id="))
    assert client.user == user and client.authorization_grant_type == "client-credentials"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "confidential", "--grant", "authorization-code", "--scopes", "openid"], "redirect"),
        (["--kind", "confidential", "--grant", "client-credentials", "--scopes", "read:everything"], "unknown scope"),
        (["--kind", "public", "--grant", "client-credentials", "--scopes", "read:payments"], "confidential"),
        (["--kind", "confidential", "--grant", "client-credentials", "--scopes", "openid read:payments"], "no user"),
        (
            ["--kind", "confidential", "--grant", "authorization-code", "--redirect-uri", "ftp://x.example/cb"],
            "redirect",
        ),
    ],
)
def test_create_oauth_client_refuses_bad_input_and_changes_nothing(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as refused:
        _run("--name", "Bad", *args)
    assert message in str(refused.value).lower()
    assert not Client.objects.exists()


def test_seed_demo_oauth_is_idempotent_and_its_printed_secrets_work(user: User) -> None:
    User.objects.filter(pk=user.pk).update(email="customer@example.com")
    for _ in range(2):
        out = StringIO()
        call_command("seed_demo_oauth", stdout=out)
    assert sorted(Client.objects.values_list("client_id", flat=True)) == [
        "mortgage-app",
        "payments-reader",
        "reporting-tool",
    ]
    text = out.getvalue()
    for client in Client.objects.all():
        secret = text.split(f"client_id={client.client_id} client_secret=")[1].split()[0]
        assert check_password(secret, client.client_secret)
        assert client.client_secret.startswith("argon2$")  # human-chosen demo secrets: argon2id
    mortgage = Client.objects.get(client_id="mortgage-app")
    assert mortgage.trusted and mortgage.redirect_uris == "http://127.0.0.1:8001/oidc/callback/"
    assert mortgage.backchannel_logout_uri == "http://127.0.0.1:8001/oidc/backchannel-logout/"
    assert not Client.objects.get(client_id="reporting-tool").trusted
    assert Client.objects.get(client_id="payments-reader").user_id == user.pk


def test_admin_registration_is_audited_and_the_secret_shown_once() -> None:
    staff = User.objects.create_superuser("root@example.com", "a long staff passphrase")
    request = RequestFactory().post("/admin/idp/client/add/")
    request.user = staff
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    client = Client(
        name="Reporting tool",
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://reports.example/cb",
        allowed_scopes="openid read:payments",
    )
    from django.contrib import admin

    model_admin = ClientAdmin(Client, admin.site)
    model_admin.save_model(request, client, form=None, change=False)
    shown = [str(m) for m in request._messages]  # type: ignore[attr-defined]
    assert len(shown) == 1 and "shown once" in shown[0]
    secret = shown[0].rsplit(": ", 1)[1]
    client.refresh_from_db()
    assert check_password(secret, client.client_secret) and secret not in client.client_secret
    event = AuditEvent.objects.get(type="oauth.client_created")
    assert event.actor == staff and event.details["client_id"] == client.client_id


@pytest.mark.slow
def test_deploy_check_raises_none_of_django_oauth_toolkits_warnings() -> None:
    result = _manage("check", "--deploy", env=_prod_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "oauth2_provider." not in result.stdout + result.stderr


@pytest.mark.slow
def test_seed_demo_oauth_is_refused_under_prod() -> None:
    result = _manage("seed_demo_oauth", env=_prod_env())
    assert result.returncode != 0 and "refused under production settings" in result.stderr


def test_openapi_schema_shows_the_scope_requirements(client: DjangoClient) -> None:
    schema: dict[str, Any] = yaml.safe_load(client.get("/api/schema/").content)
    assert schema["components"]["securitySchemes"]["oauth2"]["type"] == "oauth2"
    assert {"oauth2": ["read:accounts"]} in schema["paths"]["/api/v1/accounts"]["get"]["security"]
    assert {"oauth2": ["read:payments"]} in schema["paths"]["/api/v1/payments"]["get"]["security"]
    assert {"oauth2": ["write:payments"]} in schema["paths"]["/api/v1/payments"]["post"]["security"]
    # Endpoints that declare no scope are not offered to provider tokens.
    assert schema["paths"]["/api/v1/sessions"]["get"]["security"] == [{"bearerAuth": []}]


def test_deleting_or_disabling_a_client_in_the_admin_stops_its_tokens(
    browser: DjangoClient, make_oidc_client: Any, http: Any, discovery: dict[str, Any]
) -> None:
    from django.contrib import admin
    from rest_framework.test import APIClient

    from tests.idp.conftest import authorize, rp_session

    staff = User.objects.create_superuser("root2@example.com", "a long staff passphrase")
    request = RequestFactory().post("/admin/idp/client/")
    request.user = staff
    model_admin = ClientAdmin(Client, admin.site)

    def sign_in(client: Client, secret: str) -> str:
        rp = rp_session(client, secret, http, scope="openid read:accounts")
        response, _state, verifier, _nonce = authorize(browser, rp, discovery)
        token = rp.fetch_token(
            discovery["token_endpoint"], authorization_response=response["Location"], code_verifier=verifier
        )
        return str(token["access_token"])

    def status(token: str) -> int:
        return APIClient().get("/api/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {token}").status_code

    disabled, disabled_secret = make_oidc_client(name="To disable")
    deleted, deleted_secret = make_oidc_client(name="To delete")
    token_a, token_b = sign_in(disabled, disabled_secret), sign_in(deleted, deleted_secret)
    assert status(token_a) == status(token_b) == 200

    class Form:
        changed_data = ["is_active"]

    disabled.is_active = False
    model_admin.save_model(request, disabled, form=Form(), change=True)
    model_admin.delete_model(request, deleted)
    assert status(token_a) == status(token_b) == 401
    assert AuditEvent.objects.filter(type="oauth.client_deleted", details__client_id=deleted.client_id).exists()
    assert AuditEvent.objects.get(type="oauth.client_changed").details["changed"] == ["is_active"]
