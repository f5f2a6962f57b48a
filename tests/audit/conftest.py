from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from tests.accounts.factories import UserFactory
from tests.audit.helpers import web_login


def _strong_factor(user: User) -> None:
    from mfa.models import TOTPFactor

    factor = TOTPFactor(user=user, name="Authenticator", confirmed=True)
    factor.set_key("00" * 20)
    factor.save()


@pytest.fixture
def make_role_user() -> Callable[..., User]:
    """A user in one role group; staff roles get is_staff and a TOTP factor (the admin needs one)."""

    def _make(role: str, **extra: Any) -> User:
        staff = role in ("support", "security", "admin")
        user: User = UserFactory(  # type: ignore[assignment]
            role=role, is_staff=staff, email=f"{role}-{UserFactory._meta.model.objects.count()}@bank.test", **extra
        )
        if staff:
            _strong_factor(user)
        return user

    return _make


@pytest.fixture
def role_client(make_client: Callable[..., Client]) -> Callable[[User], Client]:
    """A client logged in as the user, with a strong factor in the session when staff."""

    def _client(user: User) -> Client:
        client = make_client()
        web_login(client, user, amr=["pwd", "otp"] if user.is_staff else ["pwd"])
        return client

    return _client
