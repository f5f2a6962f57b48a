"""Passkeys with a software authenticator making real attestations and assertions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from mfa import services
from mfa.models import WebAuthnCredential
from tests.mfa.authenticator import SoftAuthenticator, b64u, unb64u
from tests.mfa.conftest import events


def _post_json(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def register_passkey(client: Client, authenticator: SoftAuthenticator, name: str = "Laptop") -> Any:
    options = _post_json(client, "/security/mfa/passkeys/options/")
    assert options.status_code == 200, options.content
    data = options.json()
    assert data["authenticatorSelection"]["userVerification"] == "required"
    return _post_json(
        client, "/security/mfa/passkeys/verify/", {"credential": authenticator.create(data), "name": name}
    )


def test_register_a_passkey_and_sign_in_with_it(
    logged_in: Client,
    user: User,
    authenticator: SoftAuthenticator,
    make_client: Callable[..., Client],
    login: Callable[..., Any],
    run_outbox: Callable[[], int],
    outbox: list[Any],
) -> None:
    page = logged_in.get("/security/mfa/passkeys/add/")
    assert page.status_code == 200 and b"js/webauthn.js" in page.content
    response = register_passkey(logged_in, authenticator)
    assert response.status_code == 200, response.content
    cred = WebAuthnCredential.objects.get(user=user)
    assert cred.name == "Laptop" and cred.confirmed and cred.transports == ["internal"]
    assert services.methods_for(user=user) == ["webauthn"]
    assert events("mfa.enrolled", user)[-1].details["method"] == "webauthn"
    run_outbox()
    assert any("Passkey" in m.body for m in outbox)

    other = make_client()
    response = login(other, user)
    assert response["Location"] == "/accounts/login/mfa/"
    page = other.get("/accounts/login/mfa/")
    assert b'data-webauthn="assert"' in page.content
    options = _post_json(other, "/accounts/login/mfa/passkey/options/").json()
    assert options["userVerification"] == "required"
    result = _post_json(other, "/accounts/login/mfa/passkey/verify/", {"credential": authenticator.get(options)})
    assert result.status_code == 200, result.content
    assert result.json()["redirect"] == "/"
    assert other.get("/").status_code == 200
    assert other.session["amr"] == ["pwd", "hwk"]
    cred.refresh_from_db()
    assert cred.sign_count == 1 and cred.last_used_at is not None
    assert events("auth.login_succeeded", user)[-1].details["amr"] == ["pwd", "hwk"]


def test_assertion_is_single_use_and_needs_user_verification(
    user: User, authenticator: SoftAuthenticator, logged_in: Client
) -> None:
    register_passkey(logged_in, authenticator)
    options = services.webauthn_begin_assertion(user=user, purpose="login")
    assertion = authenticator.get(options)
    assert services.webauthn_finish_assertion(user=user, credential=assertion, purpose="login") == "hwk"
    with pytest.raises(services.InvalidCode):
        services.webauthn_finish_assertion(user=user, credential=assertion, purpose="login")
    authenticator.user_verification = False
    options = services.webauthn_begin_assertion(user=user, purpose="login")
    with pytest.raises(services.InvalidCode):
        services.webauthn_finish_assertion(user=user, credential=authenticator.get(options), purpose="login")
    assert events("mfa.failed", user)[-1].reason == "assertion_invalid"


def test_assertion_from_another_origin_is_refused(
    user: User, authenticator: SoftAuthenticator, logged_in: Client
) -> None:
    register_passkey(logged_in, authenticator)
    options = services.webauthn_begin_assertion(user=user, purpose="login")
    with pytest.raises(services.InvalidCode):
        services.webauthn_finish_assertion(
            user=user, credential=authenticator.get(options, origin="https://evil.example"), purpose="login"
        )


def test_binding_is_carried_in_the_challenge(user: User, authenticator: SoftAuthenticator, logged_in: Client) -> None:
    register_passkey(logged_in, authenticator)
    options = services.webauthn_begin_assertion(user=user, purpose="payment", binding="digest-1")
    assert len(unb64u(options["challenge"])) == hashlib.sha256().digest_size
    assertion = authenticator.get(options)
    with pytest.raises(services.InvalidCode):
        services.webauthn_finish_assertion(user=user, credential=assertion, purpose="payment", binding="digest-2")
    assert events("mfa.failed", user)[-1].reason == "binding_mismatch"
    options = services.webauthn_begin_assertion(user=user, purpose="payment", binding="digest-1")
    assert (
        services.webauthn_finish_assertion(
            user=user, credential=json.dumps(authenticator.get(options)), purpose="payment", binding="digest-1"
        )
        == "hwk"
    )


def test_registration_without_user_verification_is_refused(logged_in: Client, user: User) -> None:
    from django.conf import settings

    weak = SoftAuthenticator(rp_id=settings.WEBAUTHN_RP_ID, origin=settings.WEBAUTHN_ORIGIN, user_verification=False)
    response = register_passkey(logged_in, weak)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credential"
    assert not WebAuthnCredential.objects.filter(user=user).exists()


def test_another_users_credential_is_refused(
    user: User, authenticator: SoftAuthenticator, logged_in: Client, add_totp: Callable[..., Any]
) -> None:
    from tests.accounts.factories import UserFactory

    register_passkey(logged_in, authenticator)
    other = UserFactory()
    other_auth = SoftAuthenticator(rp_id=authenticator.rp_id, origin=authenticator.origin)
    WebAuthnCredential.objects.create(
        user=other, name="x", credential_id=b64u(other_auth.credential_id), public_key=b"", confirmed=True
    )
    options = services.webauthn_begin_assertion(user=user, purpose="login")
    options["allowCredentials"] = []
    with pytest.raises(services.InvalidCode):
        services.webauthn_finish_assertion(user=user, credential=other_auth.get(options), purpose="login")
    assert events("mfa.failed", user)[-1].reason == "unknown_credential"


def test_a_passkey_sign_in_can_remember_the_device(
    logged_in: Client,
    user: User,
    authenticator: SoftAuthenticator,
    make_client: Callable[..., Client],
    login: Callable[..., Any],
) -> None:
    from risk.models import KnownDevice

    assert register_passkey(logged_in, authenticator).status_code == 200
    browser = make_client()
    login(browser, user)
    options = _post_json(browser, "/accounts/login/mfa/passkey/options/").json()
    body = {"credential": authenticator.get(options), "remember_device": "1"}
    result = _post_json(browser, "/accounts/login/mfa/passkey/verify/", body)
    assert result.status_code == 200, result.content
    remembered = KnownDevice.objects.filter(user=user, trusted_until__isnull=False)
    assert remembered.count() == 1
    assert events("risk.device_trusted", user)

    # The remembered browser is not asked for the passkey again.
    browser.post("/accounts/logout/")
    assert login(browser, user)["Location"] != "/accounts/login/mfa/"
