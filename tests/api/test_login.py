"""POST /api/v1/auth/login: the web's password check (lockout, CAPTCHA, rate limit, audit), one generic 401."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts.models import RefreshToken, UserSession
from audit.events import EventType
from tests.accounts.factories import UserFactory
from tests.api.conftest import assert_error, events
from tests.api.helpers import bearer
from tests.captcha import solve


def test_login_returns_the_token_pair_and_starts_a_mobile_family(api_login, user, api):
    response = api_login(user, device_id="ios-1234", device_name="Alice's iPhone")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert response["Cache-Control"] == "no-store"

    family = UserSession.objects.get(user=user, kind="mobile")
    assert family.device_name == "Alice's iPhone" and family.amr == ["pwd"] and family.ended_at is None
    token = RefreshToken.objects.get(family=family)
    assert token.device_id == "ios-1234" and body["refresh"] not in token.token_hash

    [login_event] = events(EventType.LOGIN_SUCCEEDED, user)
    assert login_event.details["kind"] == "mobile" and login_event.details["sid"] == str(family.id)
    assert login_event.details["amr"] == ["pwd"]
    [issued] = events(EventType.TOKEN_ISSUED, user)
    assert issued.details["sid"] == str(family.id)
    assert api.get("/api/v1/me", **bearer(body)).status_code == 200


def test_unknown_email_and_wrong_password_get_the_same_401(api, user):
    wrong = api.post("/api/v1/auth/login", {"email": user.email, "password": "not it at all"}, format="json")
    unknown = api.post("/api/v1/auth/login", {"email": "nobody@example.com", "password": "x" * 12}, format="json")
    assert assert_error(wrong, 401, "invalid_credentials") == assert_error(unknown, 401, "invalid_credentials")
    failed = events(EventType.LOGIN_FAILED)
    assert len(failed) == 2 and all(e.details["channel"] == "api" for e in failed)


def test_inactive_account_gets_the_generic_401(api_login, user):
    user.is_active = False
    user.save()
    assert_error(api_login(user), 401, "invalid_credentials")


def test_unverified_email_is_refused(api_login):
    user = UserFactory(email_verified=False)
    assert_error(api_login(user), 403, "email_unverified")


@override_settings(CAPTCHA_AFTER_FAILURES=100)
def test_lockout_after_five_failures_is_429_with_retry_after_even_with_the_right_password(api_login, user):
    for _ in range(4):
        assert_error(api_login(user, "wrong password!"), 401)
    body = assert_error(api_login(user, "wrong password!"), 429, "locked")
    response = api_login(user)  # the right password, while locked
    body = assert_error(response, 429, "locked")
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert body["retry_after"] == int(response["Retry-After"])
    assert events(EventType.LOCKOUT, user)


@override_settings(CAPTCHA_MAX_NUMBER=2000)
def test_captcha_required_after_failures_then_a_solved_challenge_lets_the_login_through(api_login, user):
    for _ in range(3):
        assert_error(api_login(user, "wrong password!"), 401)
    body = assert_error(api_login(user), 429, "captcha_required")
    assert {"algorithm", "challenge", "salt", "signature", "maxnumber"} <= set(body["captcha"])
    assert_error(api_login(user, captcha="bm90IGEgc29sdXRpb24="), 429, "captcha_required")
    response = api_login(user, captcha=solve(body["captcha"]))
    assert response.status_code == 200, response.json()


def test_login_is_throttled_per_ip(api_login, user, throttle_rate):
    throttle_rate("auth_login", "3/min")
    for _ in range(3):
        assert api_login(user).status_code == 200
    response = api_login(user)
    body = assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0 and body["retry_after"] > 0


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "a@example.com"},
        {"email": ["a@example.com"], "password": "x"},
        {"email": {"x": 1}, "password": 5},
        {"email": "a@example.com", "password": None},
        {"email": "a" * 5000, "password": "x"},
        {"email": "a@example.com", "password": "x", "device_id": "has spaces and ünïcode"},
        {"email": "a@example.com", "password": "x", "captcha": ["list"]},
    ],
)
def test_bad_input_is_400_with_field_errors(api, payload):
    body = assert_error(api.post("/api/v1/auth/login", payload, format="json"), 400, "invalid")
    assert isinstance(body["errors"], dict) and body["errors"]


@pytest.mark.parametrize(
    "raw, content_type, status",
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'"just a string"', "application/json", 400),
        (b"null", "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        (b"email=a&password=b", "application/x-www-form-urlencoded", 415),
        (b"<xml/>", "text/xml", 415),
    ],
)
def test_malformed_bodies_never_500(api, raw, content_type, status):
    response = api.generic("POST", "/api/v1/auth/login", raw, content_type=content_type)
    assert_error(response, status)


def test_huge_body_is_refused_not_500(api):
    raw = b'{"email": "a@example.com", "password": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = api.generic("POST", "/api/v1/auth/login", raw, content_type="application/json")
    assert_error(response, 413, "request_too_large")


def test_wrong_method_is_405_json(api):
    assert_error(api.get("/api/v1/auth/login"), 405, "method_not_allowed")


def test_unknown_api_path_is_404_json(api):
    assert_error(api.get("/api/v1/nope"), 404)


def test_login_refused_by_the_risk_engine_is_403(api_login, user):
    user.must_reset_password = True
    user.save(update_fields=["must_reset_password"])
    assert_error(api_login(user), 403, "login_denied")
    assert events(EventType.RISK_LOGIN_DENIED, user)
    assert not UserSession.objects.filter(user=user).exists()


def test_login_records_the_app_device_for_the_risk_engine(api_login, user):
    from risk.models import KnownDevice

    assert api_login(user, device_id="ios-1234", device_name="Alice's iPhone").status_code == 200
    device = KnownDevice.objects.get(user=user)
    assert device.kind == KnownDevice.Kind.MOBILE


@pytest.mark.parametrize(
    "path, scope",
    [
        ("/api/v1/auth/token/refresh", "auth_refresh"),
        ("/api/v1/auth/logout", "auth_logout"),
        ("/api/v1/auth/mfa/verify", "auth_mfa"),
        ("/api/v1/auth/mfa/challenge", "auth_mfa"),
    ],
)
def test_every_auth_endpoint_is_throttled(api, throttle_rate, path, scope, time_machine):
    # Mid-minute, so that the three requests fall in one window of the sliding count (across a window
    # boundary the previous window's weight is a hair below 1, and the estimate lets a third one pass).
    time_machine.move_to("2026-06-01T12:00:30Z", tick=False)
    throttle_rate(scope, "2/min")
    for _ in range(2):
        assert api.post(path, {}, format="json").status_code == 400
    response = api.post(path, {}, format="json")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_user_endpoints_are_throttled(api, user, throttle_rate, time_machine):
    from tests.api.helpers import issue_tokens

    time_machine.move_to("2026-06-01T12:00:30Z", tick=False)

    throttle_rate("auth_user", "2/min")
    tokens = issue_tokens(user)
    for _ in range(2):
        assert api.get("/api/v1/me", **bearer(tokens)).status_code == 200
    assert_error(api.get("/api/v1/sessions", **bearer(tokens)), 429, "throttled")


def test_the_api_throttles_on_a_cache_that_is_not_redis(api, settings, throttle_rate, time_machine):
    """`make run` keeps its cache in local memory: the API's throttle counts there too (no 500)."""
    time_machine.move_to("2026-06-01T12:00:30Z", tick=False)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    throttle_rate("auth_refresh", "2/min")
    for _ in range(2):
        assert_error(api.post("/api/v1/auth/token/refresh", {}, format="json"), 400)
    response = api.post("/api/v1/auth/token/refresh", {}, format="json")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


_PLAIN = {"email": "a@example.com", "password": "correct horse battery"}


@pytest.mark.parametrize(
    "body",
    [
        _PLAIN,
        {**_PLAIN, "email": "  a@example.com \n"},
        {**_PLAIN, "password": "  spaces kept  "},
        {**_PLAIN, "password": "   "},
        {**_PLAIN, "password": ""},
        {**_PLAIN, "password": "nul\x00inside"},
        {**_PLAIN, "password": "x" * 1025},
        {**_PLAIN, "email": "x" * 255},
        {**_PLAIN, "email": 12345},
        {**_PLAIN, "email": None},
        {"password": "no email at all"},
        {**_PLAIN, "device_id": "ios-1234"},
        {**_PLAIN, "device_id": "  ios-1234  "},
        {**_PLAIN, "device_id": ""},
        {**_PLAIN, "device_id": "has space"},
        {**_PLAIN, "device_id": "ios-1234\n"},
        {**_PLAIN, "device_id": "d" * 129},
        {**_PLAIN, "device_id": None},
        {**_PLAIN, "device_name": "Alice's iPhone \ud800"},
        {**_PLAIN, "device_name": "  Alice's iPhone  "},
        {**_PLAIN, "device_name": "n" * 121},
        {**_PLAIN, "captcha": ""},
        {**_PLAIN, "captcha": ["not", "a", "string"]},
        {**_PLAIN, "unknown_field": "ignored"},
        ["not", "an", "object"],
    ],
)
def test_the_login_bodys_quick_check_agrees_with_the_serializer(body):
    """login_data (no serializer built per request) answers exactly what LoginSerializer validates,
    or None: the view then runs the serializer for its own 400."""
    from accounts.api.serializers import LoginSerializer, login_data

    serializer = LoginSerializer(data=body)
    valid = serializer.is_valid()
    quick = login_data(body)
    if quick is not None:
        assert valid and quick == dict(serializer.validated_data)
    if valid and all(isinstance(v, str) for v in body.values()):  # type: ignore[union-attr]
        assert quick == dict(serializer.validated_data)


def test_a_bad_login_body_still_gets_the_serializers_field_errors(api):
    response = api.post("/api/v1/auth/login", {"email": "a@example.com", "device_id": "has space"}, format="json")
    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"password", "device_id"}


def test_a_success_clears_the_failures_the_logins_one_read_found(api_login, user, throttle_rate, settings):
    """The counters are read in one round trip before the hash; a success clears what that read
    found (lockout and CAPTCHA counters), so 4 failures, a success and 4 failures do not lock."""
    from django.core.cache import cache

    from accounts import security

    # Through the settings fixture only: an @override_settings decorator around a test that also
    # changes settings through the fixture is undone in the wrong order and leaks into later tests.
    settings.CAPTCHA_AFTER_FAILURES = 100
    throttle_rate("auth_login", "1000/min")

    for _ in range(4):
        assert_error(api_login(user, "wrong password!"), 401)
    assert cache.get(security._account_key(user.email))
    assert api_login(user).status_code == 200
    assert cache.get(security._account_key(user.email)) is None
    for _ in range(4):
        assert_error(api_login(user, "wrong password!"), 401)
    assert api_login(user).status_code == 200
    for _ in range(4):
        assert_error(api_login(user, "wrong password!"), 401)
    assert_error(api_login(user, "wrong password!"), 429, "locked")  # the 5th in a row still locks


def test_the_login_rate_limit_is_counted_in_the_logins_one_round_trip(api_login, user, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_ip": "2/m"}
    assert api_login(user).status_code == 200
    assert api_login(user).status_code == 200
    assert_error(api_login(user), 429, "rate_limited")
    assert events(EventType.RATE_LIMITED, user)


def test_the_device_loaded_with_the_user_is_this_apps_device(api_login, user):
    """The app's device comes with the user row (one query): another device id of the same user is
    a new device, the same one is recognised and updated."""
    from risk.models import KnownDevice

    assert api_login(user, device_id="phone-aaaa").status_code == 200
    assert api_login(user, device_id="phone-aaaa").status_code == 200
    assert not events(EventType.RISK_NEW_DEVICE, user)
    assert api_login(user, device_id="phone-bbbb").status_code == 200
    assert len(events(EventType.RISK_NEW_DEVICE, user)) == 1
    assert KnownDevice.objects.filter(user=user).count() == 2
    assert api_login(user, device_id="phone-bbbb").status_code == 200
    assert len(events(EventType.RISK_NEW_DEVICE, user)) == 1
