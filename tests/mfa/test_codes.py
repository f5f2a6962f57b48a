"""SMS and email codes: the real twilio client against an HTTP mock, locmem email, the rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from django.conf import settings

from accounts.models import User
from mfa import services
from mfa.models import CodeChallenge, MFAState
from notifications.models import OutboxMessage
from tests.mfa.conftest import events

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"


def _twilio_ok(body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "sid": "SM" + "1" * 32,
        "status": "queued",
        "to": "+447700900123",
        "from": settings.TWILIO_FROM_NUMBER,
        "body": "",
        "account_sid": settings.TWILIO_ACCOUNT_SID,
        **(body or {}),
    }


@pytest.fixture
def twilio() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _sent_sms(mock: responses.RequestsMock) -> list[dict[str, str]]:
    result = []
    for call in mock.calls:
        assert call.request.url == TWILIO_URL
        form = parse_qs(str(call.request.body))
        result.append({k: v[0] for k, v in form.items()})
    return result


def _code(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match
    return match.group(1)


def test_sms_code_goes_through_twilio_and_then_verifies(
    user: User, add_sms: Callable[..., Any], twilio: responses.RequestsMock, run_outbox: Callable[[], int]
) -> None:
    twilio.add(responses.POST, TWILIO_URL, json=_twilio_ok(), status=201)
    add_sms(user, phone="+447700900123")
    challenge = services.code_send(user=user, method="sms", purpose="login")
    assert challenge.sent_to == "+44•••••123"
    assert challenge.expires_at - challenge.created_at == timedelta(minutes=5)
    assert run_outbox() == 1
    [sms] = _sent_sms(twilio)
    assert sms["To"] == "+447700900123"
    assert sms["From"] == settings.TWILIO_FROM_NUMBER
    assert "sign in" in sms["Body"] and "http" not in sms["Body"]
    code = _code(sms["Body"])
    # Only a hash is stored.
    assert code not in CodeChallenge.objects.get(id=challenge.id).code_hash
    assert services.code_verify(user=user, method="sms", code=code, purpose="login") == "sms"
    with pytest.raises(services.ChallengeExpired):
        services.code_verify(user=user, method="sms", code=code, purpose="login")
    assert [e.details["method"] for e in events("mfa.code_sent", user)] == ["sms"]
    assert events("mfa.verified", user)[-1].details == {
        "method": "sms",
        "purpose": "login",
        "device": challenge.factor_id,
    }


def test_twilio_failure_leaves_the_message_pending_and_the_user_is_told(
    client: Any,
    user: User,
    login: Callable[..., Any],
    add_sms: Callable[..., Any],
    twilio: responses.RequestsMock,
    run_outbox: Callable[[], int],
    add_totp: Callable[..., Any],
    time_machine: Any,
) -> None:
    time_machine.move_to(T0, tick=False)
    twilio.add(responses.POST, TWILIO_URL, json={"code": 20500, "message": "down", "status": 500}, status=500)
    add_sms(user)
    add_totp(user)
    login(client, user)
    # No on-commit in tests: deliver as the worker would, straight after sending.
    response = client.post("/accounts/login/mfa/send/", {"method": "sms"})
    assert response.status_code == 302
    run_outbox()
    assert len(twilio.calls) == 1
    message = OutboxMessage.objects.get(channel="sms")
    assert message.status == OutboxMessage.Status.PENDING
    time_machine.move_to(T0 + timedelta(seconds=25), tick=False)
    page = client.get("/accounts/login/mfa/?method=sms")
    html = page.content.decode()
    assert 'id="mfa-delayed"' in html
    # Another factor is offered.
    assert "?method=totp" in html
    # The message is still queued: the beat task sends it once Twilio answers.
    twilio.replace(responses.POST, TWILIO_URL, json=_twilio_ok(), status=201)
    time_machine.move_to(T0 + timedelta(minutes=2), tick=False)
    run_outbox()
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT
    code = _code(_sent_sms(twilio)[-1]["Body"])
    response = client.post("/accounts/login/mfa/", {"method": "sms", "code": code})
    assert response.status_code == 302


def test_email_code_through_locmem(
    user: User, add_email: Callable[..., Any], outbox: list[Any], run_outbox: Callable[[], int]
) -> None:
    add_email(user)
    services.code_send(
        user=user,
        method="email",
        purpose="payment",
        binding="abc",
        summary="approve a payment of 15,000.00 EUR to Jane Doe",
    )
    run_outbox()
    [mail] = [m for m in outbox if m.to == [user.email]]
    assert "15,000.00 EUR to Jane Doe" in mail.body
    code = _code(mail.body)
    # Bound to what it authorises: another binding does not accept it.
    with pytest.raises(services.ChallengeExpired):
        services.code_verify(user=user, method="email", code=code, purpose="payment", binding="other")
    assert services.code_verify(user=user, method="email", code=code, purpose="payment", binding="abc") == "email"


def _sent_code(outbox: list[Any], run_outbox: Callable[[], int]) -> str:
    run_outbox()
    return _code(outbox[-1].body)


def test_three_wrong_codes_void_the_challenge_and_the_fourth_attempt_is_refused(
    user: User, add_email: Callable[..., Any], outbox: list[Any], run_outbox: Callable[[], int]
) -> None:
    add_email(user)
    services.code_send(user=user, method="email", purpose="login")
    code = _sent_code(outbox, run_outbox)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    lefts = []
    for _ in range(3):
        with pytest.raises(services.InvalidCode) as exc:
            services.code_verify(user=user, method="email", code=wrong, purpose="login")
        lefts.append(exc.value.attempts_left)
    assert lefts == [2, 1, 0]
    # 4th attempt, even with the right code: the challenge is void.
    with pytest.raises(services.ChallengeExpired):
        services.code_verify(user=user, method="email", code=code, purpose="login")
    assert len(events("mfa.failed", user)) == 4


def test_codes_expire_after_five_minutes(
    user: User, add_email: Callable[..., Any], outbox: list[Any], run_outbox: Callable[[], int], time_machine: Any
) -> None:
    time_machine.move_to(T0, tick=False)
    add_email(user)
    services.code_send(user=user, method="email", purpose="login")
    code = _sent_code(outbox, run_outbox)
    time_machine.move_to(T0 + timedelta(minutes=5, seconds=1), tick=False)
    with pytest.raises(services.ChallengeExpired):
        services.code_verify(user=user, method="email", code=code, purpose="login")


def test_resend_cooldown_hourly_cap_and_one_live_challenge(
    user: User,
    add_email: Callable[..., Any],
    outbox: list[Any],
    run_outbox: Callable[[], int],
    time_machine: Any,
    settings: Any,
) -> None:
    settings.MFA_CODE_HOURLY_CAP = 3
    time_machine.move_to(T0, tick=False)
    add_email(user)
    services.code_send(user=user, method="email", purpose="login")
    first = _sent_code(outbox, run_outbox)
    with pytest.raises(services.ResendTooSoon) as too_soon:
        services.code_send(user=user, method="email", purpose="login")
    assert too_soon.value.retry_at == T0 + timedelta(seconds=30)
    time_machine.move_to(T0 + timedelta(seconds=30), tick=False)
    services.code_send(user=user, method="email", purpose="login")
    second = _sent_code(outbox, run_outbox)
    # The resend voided the first code.
    if first != second:
        with pytest.raises(services.InvalidCode):
            services.code_verify(user=user, method="email", code=first, purpose="login")
    time_machine.move_to(T0 + timedelta(seconds=60), tick=False)
    services.code_send(user=user, method="email", purpose="login")
    time_machine.move_to(T0 + timedelta(seconds=90), tick=False)
    with pytest.raises(services.TooManyCodes) as capped:
        services.code_send(user=user, method="email", purpose="login")
    assert capped.value.retry_at == T0 + timedelta(hours=1)
    assert CodeChallenge.objects.filter(user=user, voided_at__isnull=True, used_at__isnull=True).count() == 1
    assert events("auth.rate_limited", user)[-1].reason == "mfa_code_hourly_cap"


def test_five_consecutive_wrong_codes_lock_the_second_factor_and_email_the_user(
    user: User,
    add_totp: Callable[..., Any],
    add_email: Callable[..., Any],
    outbox: list[Any],
    run_outbox: Callable[[], int],
    time_machine: Any,
) -> None:
    time_machine.move_to(T0, tick=False)
    _device, totp = add_totp(user)
    add_email(user)
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    # Across methods and challenges: 3 on an email challenge, 2 on TOTP.
    services.code_send(user=user, method="email", purpose="login")
    for _ in range(3):
        with pytest.raises(services.InvalidCode):
            services.code_verify(
                user=user,
                method="email",
                code="000000" if _sent_code(outbox, run_outbox) != "000000" else "111111",
                purpose="login",
            )
    with pytest.raises(services.InvalidCode) as fourth:
        services.code_verify(user=user, method="totp", code=wrong, purpose="login")
    assert fourth.value.attempts_left == 1
    with pytest.raises(services.SecondFactorLocked) as fifth:
        services.code_verify(user=user, method="totp", code=wrong, purpose="login")
    assert fifth.value.retry_at == T0 + timedelta(minutes=15)
    # The 6th attempt is refused even with the right code.
    with pytest.raises(services.SecondFactorLocked):
        services.code_verify(user=user, method="totp", code=totp.now(), purpose="login")
    with pytest.raises(services.SecondFactorLocked):
        services.code_send(user=user, method="email", purpose="reauth")
    [locked] = events("mfa.locked", user)
    assert locked.outcome == "denied"
    assert events("mfa.failed", user)[-1].reason == "locked"
    run_outbox()
    assert any("paused" in m.body for m in outbox if m.to == [user.email])
    # After 15 minutes the right code works and the counter starts again.
    time_machine.move_to(T0 + timedelta(minutes=15, seconds=1), tick=False)
    assert services.code_verify(user=user, method="totp", code=totp.now(), purpose="login") == "otp"
    assert MFAState.objects.get(user=user).consecutive_failures == 0


def test_staff_cannot_use_sms_or_email(user: User, add_email: Callable[..., Any]) -> None:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    add_email(user)
    with pytest.raises(services.MethodUnavailable):
        services.code_send(user=user, method="email", purpose="login")
    assert services.methods_for(user=user) == []
