"""PSD2 RTS (Delegated Regulation 2018/389) Art. 4 and 5, and the ASVS gaps closed by configuration.

Art. 4(3)(b): at most five failed authentication attempts in a row before a temporary block.
Art. 4(3)(d): at most five minutes of inactivity once authenticated (SESSION_IDLE_TIMEOUT=300 in a
PSD2 deployment; the portal's default is 30 minutes, ASVS L2's ceiling).
Art. 5: dynamic linking of the code to the amount and the payee (the rest is in tests/payments).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import UserSession
from audit.events import EventType
from audit.models import AuditEvent
from payments import services
from payments.models import BankAccount, Payment
from tests.core.test_core import _manage, _prod_env


@override_settings(SESSION_IDLE_TIMEOUT=300, SESSION_COOKIE_AGE=300)
def test_art4_five_minutes_of_inactivity_end_the_session(client: Any, user: Any, login: Any, time_machine: Any) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    assert login(client, user).status_code == 302
    time_machine.shift(timedelta(minutes=4, seconds=59))
    assert client.get("/").status_code == 200  # activity restarts the five minutes
    time_machine.shift(timedelta(minutes=5, seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and "reason=idle" in response["Location"]
    assert UserSession.objects.get(user=user).end_reason == "idle"


@override_settings(CAPTCHA_AFTER_FAILURES=100)
def test_art4_the_fifth_failed_attempt_blocks_even_the_right_password(client: Any, user: Any, password: str) -> None:
    for _ in range(4):
        client.post("/accounts/login/", {"email": user.email, "password": "not the password"})
    assert not AuditEvent.objects.filter(type=EventType.LOCKOUT).exists()
    client.post("/accounts/login/", {"email": user.email, "password": "not the password"})
    assert AuditEvent.objects.filter(type=EventType.LOCKOUT, user=user).count() == 1
    response = client.post("/accounts/login/", {"email": user.email, "password": password})
    assert response.status_code != 302 and "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "change", [{"amount": Decimal("12000.01")}, {"payee_iban": "GB33BUKB20201555555555"}, {"payee_name": "Mallory"}]
)
def test_art5_a_code_is_void_once_the_amount_or_payee_changes_even_with_totp(user: Any, change: dict[str, Any]) -> None:
    """TOTP codes are not sent per payment, so the server-side digest is what links the approval."""
    import pyotp

    from mfa.models import TOTPFactor

    factor = TOTPFactor(user=user, name="app", confirmed=True)
    factor.set_key("3132333435363738393031323334353637383930")
    factor.save()
    totp = pyotp.TOTP("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")
    account = services.account_open(owner=user, currency="EUR", opening_balance=Decimal("50000.00"))
    outcome = services.payment_create(
        user=user,
        from_account=account.id,
        amount="12000.00",
        currency="EUR",
        to_iban="DE89370400440532013000",
        payee_name="Jane Doe",
        channel="api",
    )
    assert outcome.needs_step_up
    Payment.objects.filter(id=outcome.payment.id).update(**change)
    with pytest.raises(services.PaymentError) as refused:
        services.payment_confirm(user=user, payment_id=outcome.payment.id, method="totp", code=totp.now())
    assert refused.value.code == "payment_changed"
    payment = Payment.objects.get(id=outcome.payment.id)
    assert payment.status == Payment.Status.REFUSED and payment.posting is None


@pytest.mark.slow
def test_asvs_3_4_4_production_cookies_carry_the_host_prefix() -> None:
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME, s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_DOMAIN, "
        "s.SESSION_COOKIE_PATH)",
        env=_prod_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "__Host-bp_session",
        "__Host-bp_csrftoken",
        "True",
        "None",
        "/",
    ]


@override_settings(SECURITY_PROFILE="psd2", SCA_TRA_BANDS=[])
def test_art16_low_value_exemption_under_the_psd2_profile(user: Any) -> None:
    """Under SECURITY_PROFILE=psd2 every payment needs SCA unless an exemption applies: 30.00 is
    low value (RTS Art. 16), 30.01 is not (more in tests/payments/test_sca.py)."""
    from mfa.models import EmailFactor

    EmailFactor.objects.create(user=user, name="email", email=user.email, confirmed=True)
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")
    account = services.account_open(owner=user, currency="EUR", opening_balance=Decimal("1000.00"))
    common = {
        "user": user,
        "from_account": account.id,
        "currency": "EUR",
        "to_iban": "DE89370400440532013000",
        "payee_name": "Jane Doe",
        "channel": "api",
        "payer": services.PayerContext(device="known"),
    }
    exempt = services.payment_create(amount="30.00", **common)  # type: ignore[arg-type]
    assert not exempt.needs_step_up and exempt.payment.sca_exemption == "low_value"
    pending = services.payment_create(amount="30.01", **common)  # type: ignore[arg-type]
    assert pending.needs_step_up and pending.payment.step_up_reasons == ["psd2_sca"]
