"""The API's second-factor step: mfa_required + mfa_token, then /auth/mfa/challenge and /auth/mfa/verify."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from accounts.models import UserSession
from audit.events import EventType
from mfa import services as mfa_services
from tests.accounts.factories import UserFactory
from tests.api.conftest import assert_error, events
from tests.api.helpers import bearer


def _verify(api: Any, token: str, code: str, **extra: Any) -> Any:
    return api.post("/api/v1/auth/mfa/verify", {"mfa_token": token, "code": code, **extra}, format="json")


def _challenge(api: Any, token: str, method: str, **extra: Any) -> Any:
    return api.post("/api/v1/auth/mfa/challenge", {"mfa_token": token, "method": method, **extra}, format="json")


def _emailed_code(run_outbox: Any) -> str:
    run_outbox()
    match = re.search(r"\b(\d{6})\b", str(mail.outbox[-1].body))
    assert match
    return match.group(1)


def test_totp_user_gets_mfa_required_then_tokens_with_amr(api, api_login, user, add_totp):
    totp = add_totp(user)
    first = api_login(user, device_id="ios-install-1")
    assert first.status_code == 200
    body = first.json()
    assert body["mfa_required"] is True and body["methods"] == ["totp"] and body["expires_in"] == 300
    assert set(body) == {"mfa_required", "mfa_token", "methods", "expires_in"}
    assert not UserSession.objects.filter(user=user).exists(), "no login before the factor"
    assert not events(EventType.LOGIN_SUCCEEDED, user)

    response = _verify(api, body["mfa_token"], totp.now())
    assert response.status_code == 200, response.json()
    tokens = response.json()
    assert api.get("/api/v1/me", **bearer(tokens)).status_code == 200
    import jwt

    assert jwt.decode(tokens["access"], options={"verify_signature": False})["amr"] == ["pwd", "otp"]
    [login] = events(EventType.LOGIN_SUCCEEDED, user)
    assert login.details["kind"] == "mobile" and login.details["amr"] == ["pwd", "otp"]
    assert login.details["mfa_method"] == "totp"
    assert events(EventType.MFA_VERIFIED, user)


def test_mfa_token_is_single_use(api, api_login, user, add_totp):
    totp = add_totp(user)
    token = api_login(user).json()["mfa_token"]
    assert _verify(api, token, totp.now()).status_code == 200
    assert_error(_verify(api, token, totp.now()), 401, "mfa_token_invalid")


def test_mfa_token_expires_after_5_minutes(api, api_login, user, add_totp, time_machine):
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    totp = add_totp(user)
    token = api_login(user).json()["mfa_token"]
    time_machine.move_to("2026-03-02 09:05:01+00:00", tick=False)
    assert_error(_verify(api, token, totp.now()), 401, "mfa_token_invalid")


def test_mfa_token_is_bound_to_the_device(api, api_login, user, add_totp):
    totp = add_totp(user)
    token = api_login(user, device_id="ios-install-1").json()["mfa_token"]
    assert_error(_verify(api, token, totp.now(), device_id="android-install-2"), 401, "mfa_token_invalid")
    response = _verify(api, token, totp.now(), device_id="ios-install-1")
    assert response.status_code == 200
    from risk.models import KnownDevice

    # The risk engine's decision from the password step is carried to the factor step.
    assert KnownDevice.objects.filter(user=user, kind=KnownDevice.Kind.MOBILE).count() == 1


def test_garbage_mfa_token_is_401(api):
    assert_error(_verify(api, "x" * 40, "123456"), 401, "mfa_token_invalid")
    assert_error(_challenge(api, "nope", "email"), 401, "mfa_token_invalid")


def test_wrong_code_is_401_with_attempts_left_and_too_many_is_429(api, api_login, user, add_totp):
    add_totp(user)
    statuses = []
    for _ in range(6):
        token = api_login(user).json()["mfa_token"]
        response = _verify(api, token, "000000")
        statuses.append(response.status_code)
        if response.status_code == 401:
            body = assert_error(response, 401, "invalid_code")
            assert "attempts_left" in body
        else:
            assert_error(response, 429, "mfa_locked")
            assert int(response["Retry-After"]) > 0
            break
    assert statuses[-1] == 429, statuses
    assert events(EventType.MFA_FAILED, user)


def test_email_code_challenge_and_verify(api, api_login, user, add_email_factor, run_outbox):
    add_email_factor(user)
    body = api_login(user).json()
    assert body["methods"] == ["email"]
    sent = _challenge(api, body["mfa_token"], "email")
    assert sent.status_code == 202
    assert "•" in sent.json()["sent_to"] and user.email not in sent.json()["sent_to"]
    code = _emailed_code(run_outbox)
    response = _verify(api, body["mfa_token"], code)  # method defaults to the challenged one
    assert response.status_code == 200, response.json()
    import jwt

    assert jwt.decode(response.json()["access"], options={"verify_signature": False})["amr"] == ["pwd", "email"]


def test_email_code_of_another_pending_login_is_refused(api, api_login, user, add_email_factor, run_outbox):
    add_email_factor(user)
    first = api_login(user).json()["mfa_token"]
    _challenge(api, first, "email")
    code = _emailed_code(run_outbox)
    second = api_login(user).json()["mfa_token"]
    response = _verify(api, second, code, method="email")
    assert response.status_code == 401


def test_challenge_for_a_method_the_user_lacks_is_400(api, api_login, user, add_totp):
    add_totp(user)
    token = api_login(user).json()["mfa_token"]
    assert_error(_challenge(api, token, "sms"), 400, "method_unavailable")
    assert_error(_challenge(api, token, "carrier-pigeon"), 400, "invalid")


def test_resend_too_soon_is_429(api, api_login, user, add_email_factor):
    add_email_factor(user)
    token = api_login(user).json()["mfa_token"]
    assert _challenge(api, token, "email").status_code == 202
    response = _challenge(api, token, "email")
    assert_error(response, 429, "resend_too_soon")
    assert int(response["Retry-After"]) > 0


def test_recovery_code(api, api_login, user, add_totp):
    add_totp(user)
    codes = mfa_services.recovery_codes_generate(request=None, user=user)
    token = api_login(user).json()["mfa_token"]
    assert set(api_login(user).json()["methods"]) == {"totp", "recovery"}
    response = _verify(api, token, codes[0])  # not six digits: taken as a recovery code
    assert response.status_code == 200, response.json()
    import jwt

    assert jwt.decode(response.json()["access"], options={"verify_signature": False})["amr"] == ["pwd", "rec"]


def test_security_staff_without_a_factor_is_refused(api_login):
    analyst = UserFactory(role="security")
    assert_error(api_login(analyst), 403, "mfa_enrolment_required")


@pytest.mark.parametrize(
    "payload", [{}, {"mfa_token": "x"}, {"mfa_token": ["x"], "code": 1}, {"mfa_token": "x", "code": "1" * 100}]
)
def test_verify_bad_input_is_400(api, payload):
    assert_error(api.post("/api/v1/auth/mfa/verify", payload, format="json"), 400, "invalid")


def _register_passkey(user: Any, password: str, make_client: Any) -> Any:
    import json as _json

    from django.conf import settings

    from tests.mfa.authenticator import SoftAuthenticator

    web = make_client()
    assert web.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    authenticator = SoftAuthenticator(rp_id=settings.WEBAUTHN_RP_ID, origin=settings.WEBAUTHN_ORIGIN)
    options = web.post("/security/mfa/passkeys/options/", data="{}", content_type="application/json").json()
    body = {"credential": authenticator.create(options), "name": "Phone passkey"}
    response = web.post("/security/mfa/passkeys/verify/", data=_json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return authenticator


def test_passkey_login(api, api_login, user, password, make_client):
    authenticator = _register_passkey(user, password, make_client)
    body = api_login(user, device_id="ios-install-1").json()
    assert body["methods"] == ["webauthn"]
    options = _challenge(api, body["mfa_token"], "webauthn")
    assert options.status_code == 200
    assert options.json()["method"] == "webauthn"
    assertion = authenticator.get(options.json()["options"])
    response = api.post(
        "/api/v1/auth/mfa/verify", {"mfa_token": body["mfa_token"], "credential": assertion}, format="json"
    )
    assert response.status_code == 200, response.json()
    import jwt

    assert jwt.decode(response.json()["access"], options={"verify_signature": False})["amr"] == ["pwd", "hwk"]


def test_passkey_assertion_for_another_pending_login_is_refused(api, api_login, user, password, make_client):
    authenticator = _register_passkey(user, password, make_client)
    first = api_login(user).json()["mfa_token"]
    options = _challenge(api, first, "webauthn").json()["options"]
    second = api_login(user).json()["mfa_token"]
    assertion = authenticator.get(options)
    response = api.post("/api/v1/auth/mfa/verify", {"mfa_token": second, "credential": assertion}, format="json")
    assert_error(response, 401, "invalid_code")


def test_passkey_verify_without_a_credential_is_400(api, api_login, user, password, make_client):
    _register_passkey(user, password, make_client)
    token = api_login(user).json()["mfa_token"]
    assert_error(
        api.post("/api/v1/auth/mfa/verify", {"mfa_token": token, "method": "webauthn"}, format="json"), 400, "invalid"
    )
