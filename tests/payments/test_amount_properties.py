from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments import services

pytestmark = pytest.mark.django_db(transaction=False)


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(min_value=1, max_value=10**17 - 1))
def test_every_positive_two_place_amount_round_trips(cents: int) -> None:
    text = f"{cents // 100}.{cents % 100:02d}"
    assert services.parse_amount(text) == Decimal(text)
    assert str(services.parse_amount(text)) == text


@settings(max_examples=200, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_always_refused(value: float) -> None:
    with pytest.raises(services.PaymentError):
        services.parse_amount(value)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_arbitrary_text_is_either_a_valid_amount_or_a_clean_refusal(text: str) -> None:
    try:
        amount = services.parse_amount(text)
    except services.PaymentError as exc:
        assert exc.code == "invalid_amount"
    else:
        assert amount > 0 and amount == amount.quantize(Decimal("0.01"))
