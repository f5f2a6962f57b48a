"""Property-based tests (hypothesis) of every form and serializer taking money, codes, emails, IBANs or text.

One property throughout: bad input is a form error (pages) or a 4xx JSON {"detail", "code"} (API),
never a 500, and it changes nothing: no payment, no ledger entry, no beneficiary, no user, no
session, no audit row claiming success. Inputs mix arbitrary Unicode (NUL, surrogates are not
encodable so excluded, RTL marks, control characters) with near-misses of valid values (an IBAN
with one character changed, amounts with three decimals, exponents, full-width digits).
Examples are bounded (max_examples 50, no deadline) so the suite stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import User, UserSession
from audit.events import EventType
from audit.models import AuditEvent
from mfa.models import TOTPFactor
from payments import services
from payments.models import BankAccount, Beneficiary, LedgerEntry, Payment
from payments.selectors import ledger_inconsistencies
from tests.accounts.factories import UserFactory
from tests.conftest import FIREFOX_UA

PROPS = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
VALID_IBAN = "DE89370400440532013000"

# Text: arbitrary Unicode (no surrogates: they cannot travel in UTF-8) plus hand-picked nasties.
_NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202e",
    "\ufeff",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
    "{{7*7}}",
    "\r\nSet-Cookie: x=1",
    "x" * 300,
    "🙂" * 50,
]
any_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=80),
    st.sampled_from(_NASTY),
)
amount_text = st.one_of(
    any_text,
    st.sampled_from(
        ["0", "-1", "0.001", "1e3", "NaN", "Infinity", "-0.00", "１２", "10,00", "1_000", "0x10", "9" * 40]
    ),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
amount_json = st.one_of(
    amount_text,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def near_iban(draw: Any) -> str:
    """A valid IBAN with one character replaced, dropped or doubled (the checksum must catch it)."""
    i = draw(st.integers(min_value=0, max_value=len(VALID_IBAN) - 1))
    how = draw(st.sampled_from(["replace", "drop", "double"]))
    if how == "drop":
        return VALID_IBAN[:i] + VALID_IBAN[i + 1 :]
    if how == "double":
        return VALID_IBAN[:i] + VALID_IBAN[i] + VALID_IBAN[i:]
    ch = draw(st.sampled_from("0123456789ABCXYZ"))
    if ch == VALID_IBAN[i]:
        ch = "Q"
    return VALID_IBAN[:i] + ch + VALID_IBAN[i + 1 :]


bad_iban = st.one_of(any_text, near_iban())
code_text = st.one_of(
    any_text,
    st.text("0123456789", min_size=0, max_size=12),
    st.sampled_from(["000000", "123456", "12345", "1234567", "12 34 56", "１２３４５６", "abcdef", "-12345"]),
)
email_text = st.one_of(
    any_text, st.emails().map(lambda e: e[:300]), st.sampled_from(["a@b", "@", "a@@b.c", "a@b.c\x00"])
)


def _counts() -> dict[str, int]:
    return {
        "payments": Payment.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "beneficiaries": Beneficiary.objects.count(),
        "users": User.objects.count(),
        "sessions": UserSession.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def _assert_api_error(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert isinstance(body.get("code"), str) and body["code"]


@pytest.fixture
def relaxed_limits(settings: Any) -> None:
    """Rate limits out of the way: the property is about the input, not the request rate."""
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = dict.fromkeys(rest.get("DEFAULT_THROTTLE_RATES", {}), "100000/min")
    settings.REST_FRAMEWORK = rest
    settings.RATE_LIMITS = dict.fromkeys(settings.RATE_LIMITS, "100000/m")
    settings.PAYMENT_DAILY_LIMIT = Decimal("1000000000.00")  # many pending step-ups in one test


@pytest.fixture
def customer() -> User:
    return cast(User, UserFactory(full_name="Alice Customer"))


@pytest.fixture
def account(customer: User) -> BankAccount:
    services.internal_account(kind=BankAccount.Kind.CLEARING, currency="EUR")
    return services.account_open(owner=customer, currency="EUR", opening_balance=Decimal("50000.00"))


@pytest.fixture
def api(customer: User, relaxed_limits: None) -> APIClient:
    from tests.api.helpers import bearer, issue_tokens

    client = APIClient(REMOTE_ADDR="203.0.113.10")
    client.credentials(**bearer(issue_tokens(customer)))
    return client


@pytest.fixture
def web(customer: User, login: Callable[..., Any], relaxed_limits: None) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT=FIREFOX_UA)
    assert login(client, customer).status_code == 302
    return client


# --- money: parse_amount, the payment form and the payment API ----------------------------------


@PROPS
@given(raw=st.one_of(amount_json, st.binary(max_size=10), st.just(object())))
def test_parse_amount_takes_any_object_and_refuses_cleanly(raw: Any) -> None:
    try:
        value = services.parse_amount(raw)
    except services.PaymentError as exc:
        assert exc.code == "invalid_amount" and exc.message
    else:
        assert isinstance(value, Decimal) and value > 0 and value == value.quantize(Decimal("0.01"))


@PROPS
@given(
    amount=amount_json,
    to_iban=st.one_of(bad_iban, st.none(), st.integers()),
    name=any_text,
    reference=any_text,
    currency=st.one_of(st.sampled_from(["EUR", "eur", "USD", ""]), any_text),
)
def test_payment_api_bad_input_is_a_4xx_json_error_and_changes_nothing(
    api: APIClient, account: BankAccount, amount: Any, to_iban: Any, name: str, reference: str, currency: str
) -> None:
    before = _counts()
    body = {
        "from_account": str(account.id),
        "amount": amount,
        "to_iban": to_iban,
        "payee_name": name,
        "reference": reference,
        "currency": currency,
    }
    response = api.post("/api/v1/payments", body, format="json", HTTP_IDEMPOTENCY_KEY=f"p-{hash(repr(body))}")
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        _assert_api_error(response)
        assert _counts() == before
    assert ledger_inconsistencies() == []


@PROPS
@given(amount=amount_text, to_iban=bad_iban, name=any_text, reference=any_text)
def test_payment_form_bad_input_is_a_form_error_and_changes_nothing(
    web: Client, account: BankAccount, amount: str, to_iban: str, name: str, reference: str
) -> None:
    page = web.get("/payments/new/")
    token = re.search(r'name="submission" value="([^"]+)"', page.content.decode())
    assert token
    before = _counts()
    response = web.post(
        "/payments/new/",
        {
            "from_account": str(account.id),
            "beneficiary": "",
            "payee_name": name,
            "to_iban": to_iban,
            "amount": amount,
            "reference": reference,
            "submission": token.group(1),
        },
    )
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 200:
        assert 'class="errorlist' in response.content.decode()
        assert _counts() == before
    assert ledger_inconsistencies() == []


# --- beneficiaries: IBAN and name -----------------------------------------------------------------


@PROPS
@given(
    name=any_text,
    iban=bad_iban,
    code=st.one_of(code_text, st.none()),
    method=st.one_of(st.sampled_from(["totp", "sms", "email", "", "passkey"]), any_text),
)
def test_beneficiary_api_bad_input_is_a_4xx_json_error_and_changes_nothing(
    api: APIClient, account: BankAccount, name: str, iban: str, code: Any, method: str
) -> None:
    before = _counts()
    body: dict[str, Any] = {"name": name, "iban": iban, "method": method}
    if code is not None:
        body["code"] = code
    response = api.post("/api/v1/beneficiaries", body, format="json")
    _assert_api_error(response)
    after = _counts()
    assert after["beneficiaries"] == before["beneficiaries"] and after["payments"] == before["payments"]
    challenge = api.post(
        "/api/v1/beneficiaries/challenge", {"name": name, "iban": iban, "method": "email"}, format="json"
    )
    assert challenge.status_code < 500
    if challenge.status_code >= 400:
        _assert_api_error(challenge)


@PROPS
@given(name=any_text, iban=bad_iban)
def test_beneficiary_form_bad_iban_is_a_form_error_and_changes_nothing(web: Client, name: str, iban: str) -> None:
    before = _counts()
    response = web.post("/payments/beneficiaries/add/", {"name": name, "iban": iban})
    assert response.status_code == 200, response.status_code  # near-miss IBANs never pass the checksum
    assert 'class="errorlist' in response.content.decode()
    assert _counts() == before


# --- codes: payment step-up, MFA login step ---------------------------------------------------------


@PROPS
@given(code=code_text, method=st.one_of(st.sampled_from(["totp", "email", "sms", "recovery", ""]), any_text))
def test_wrong_step_up_codes_never_complete_a_payment(
    api: APIClient, customer: User, account: BankAccount, code: str, method: str
) -> None:
    factor = TOTPFactor.objects.filter(user=customer).first()
    if factor is None:
        factor = TOTPFactor(user=customer, name="app", confirmed=True)
        factor.set_key("3132333435363738393031323334353637383930")
        factor.save()
    pending = api.post(
        "/api/v1/payments",
        {
            "from_account": str(account.id),
            "amount": "15000.00",
            "currency": "EUR",
            "to_iban": VALID_IBAN,
            "payee_name": "Jane Doe",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"big-{hash((code, method))}",
    )
    assert pending.status_code == 202, pending.content[:300]
    payment_id = pending.json()["id"]
    ledger = LedgerEntry.objects.count()
    response = api.post(f"/api/v1/payments/{payment_id}/confirm", {"code": code, "method": method}, format="json")
    _assert_api_error(response)
    assert Payment.objects.get(id=payment_id).status != Payment.Status.COMPLETED
    assert LedgerEntry.objects.count() == ledger
    assert ledger_inconsistencies() == []


@PROPS
@given(code=code_text, method=st.sampled_from(["totp", "recovery", "sms", "email", "bogus"]))
def test_wrong_mfa_codes_never_log_in(user: User, password: str, relaxed_limits: None, code: str, method: str) -> None:
    if not TOTPFactor.objects.filter(user=user).exists():
        factor = TOTPFactor(user=user, name="app", confirmed=True)
        factor.set_key("3132333435363738393031323334353637383930")
        factor.save()
    client = Client(REMOTE_ADDR="203.0.113.20", HTTP_USER_AGENT=FIREFOX_UA)
    assert client.post("/accounts/login/", {"email": user.email, "password": password}).status_code == 302
    successes = AuditEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED).count()
    response = client.post("/accounts/login/mfa/", {"method": method, "code": code})
    assert response.status_code in (200, 302, 400, 429), response.status_code  # 400: the form's own answer
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED).count() == successes
    assert client.get("/").status_code == 302  # still not logged in


@PROPS
@given(code=st.one_of(code_text, st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)))
def test_api_mfa_verify_with_bad_codes_is_a_4xx_json_error(
    user: User, password: str, relaxed_limits: None, code: Any
) -> None:
    if not TOTPFactor.objects.filter(user=user).exists():
        factor = TOTPFactor(user=user, name="app", confirmed=True)
        factor.set_key("3132333435363738393031323334353637383930")
        factor.save()
    api = APIClient(REMOTE_ADDR="203.0.113.21")
    step = api.post("/api/v1/auth/login", {"email": user.email, "password": password}, format="json")
    if step.status_code != 200:  # locked after many wrong codes: still the error shape
        _assert_api_error(step)
        return
    sessions = UserSession.objects.count()
    response = api.post("/api/v1/auth/mfa/verify", {"mfa_token": step.json()["mfa_token"], "code": code}, format="json")
    _assert_api_error(response)
    assert UserSession.objects.count() == sessions


# --- emails and free text: login, sign-up, reset -----------------------------------------------------


@PROPS
@given(email=email_text, pw=any_text)
def test_login_form_with_any_input_never_logs_in_or_fails(relaxed_limits: None, email: str, pw: str) -> None:
    client = Client(REMOTE_ADDR="203.0.113.30", HTTP_USER_AGENT=FIREFOX_UA)
    before = AuditEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED).count()
    response = client.post("/accounts/login/", {"email": email, "password": pw})
    assert response.status_code in (200, 400, 429), response.status_code  # 400: an incomplete form
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(type=EventType.LOGIN_SUCCEEDED).count() == before
    assert not UserSession.objects.exists()


@PROPS
@given(
    email=st.one_of(email_text, st.integers(), st.none()),
    pw=st.one_of(any_text, st.integers(), st.none()),
    device_id=st.one_of(st.none(), any_text),
)
def test_api_login_with_any_input_is_a_4xx_json_error(
    relaxed_limits: None, email: Any, pw: Any, device_id: Any
) -> None:
    body: dict[str, Any] = {"email": email, "password": pw}
    if device_id is not None:
        body["device_id"] = device_id
    response = APIClient(REMOTE_ADDR="203.0.113.31").post("/api/v1/auth/login", body, format="json")
    _assert_api_error(response)
    assert not UserSession.objects.exists()


@PROPS
@given(email=email_text, name=any_text, pw1=any_text, pw2=any_text)
def test_signup_form_bad_input_is_a_form_error_and_creates_nobody(
    relaxed_limits: None, email: str, name: str, pw1: str, pw2: str
) -> None:
    client = Client(REMOTE_ADDR="203.0.113.32", HTTP_USER_AGENT=FIREFOX_UA)
    users = User.objects.count()
    response = client.post(
        "/accounts/signup/", {"email": email, "full_name": name, "new_password1": pw1, "new_password2": pw2}
    )
    assert response.status_code in (200, 302, 400, 429), response.status_code
    if response.status_code != 302:
        assert User.objects.count() == users
    assert "_auth_user_id" not in client.session


@PROPS
@given(email=email_text)
def test_password_reset_request_with_any_email_never_fails(relaxed_limits: None, email: str) -> None:
    client = Client(REMOTE_ADDR="203.0.113.33", HTTP_USER_AGENT=FIREFOX_UA)
    before = _counts()
    response = client.post("/accounts/password/reset/", {"email": email})
    assert response.status_code in (200, 302, 400, 429), response.status_code
    after = _counts()
    assert after["users"] == before["users"] and after["sessions"] == before["sessions"]
