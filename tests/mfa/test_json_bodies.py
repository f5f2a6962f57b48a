"""The web's passkey endpoints parse their JSON through core.http.json_body: bad input is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from mfa.models import WebAuthnCredential
from tests.mfa.authenticator import enrolled_passkey

DEEP = "[" * 100_000 + "]" * 100_000
BAD_BODIES = [
    pytest.param(DEEP, "json_too_deep", id="100k-brackets"),
    pytest.param('{"credential": ' * 40 + "1" + "}" * 40, "json_too_deep", id="40-objects"),
    pytest.param("{not json", "invalid_json", id="syntax"),
    pytest.param('{"credential": NaN}', "invalid_json", id="nan"),
    pytest.param("[1, 2]", "invalid_json", id="not-an-object"),
    pytest.param(b"\xff\xfe{}", "invalid_json", id="not-utf8"),
]


def _assert_refused(response: Any, code: str) -> None:
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == code
    assert response.json()["detail"]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
def test_login_passkey_verify_refuses_bad_json(
    client: Client, user: User, login: Callable[..., Any], body: Any, code: str
) -> None:
    enrolled_passkey(user)
    assert login(client, user)["Location"] == "/accounts/login/mfa/"  # reachable with only the password
    response = client.post("/accounts/login/mfa/passkey/verify/", data=body, content_type="application/json")
    _assert_refused(response, code)
    assert "_auth_user_id" not in client.session  # still not signed in


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
@pytest.mark.parametrize("path", ["/accounts/reauth/passkey/verify/", "/security/mfa/passkeys/verify/"])
def test_reauth_and_enrolment_passkey_endpoints_refuse_bad_json(
    logged_in: Client, user: User, path: str, body: Any, code: str
) -> None:
    enrolled_passkey(user)
    response = logged_in.post(path, data=body, content_type="application/json")
    _assert_refused(response, code)
    assert WebAuthnCredential.objects.filter(user=user).count() == 1  # nothing registered


def test_an_oversized_passkey_body_is_a_413_with_the_error_body(logged_in: Client, user: User, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = logged_in.post(
        "/security/mfa/passkeys/verify/", data='{"name": "' + "x" * 2048 + '"}', content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
