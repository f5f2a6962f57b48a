from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.models import User


def normalize_email(value: str | None) -> str:
    return (value or "").strip().lower()


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The account of an axes counter: the login's credentials carry `username`; axes' own
    get_credentials() (its reset on a successful login) names it by USERNAME_FIELD, `email`.
    Reading only `username` made that reset clear the counter of no account at all."""
    credentials = credentials or {}
    return normalize_email(credentials.get("username") or credentials.get(User.USERNAME_FIELD))


class EmailBackend(ModelBackend):
    """Email + password. Unknown emails still run the hasher, so timing does not tell them apart."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        email = normalize_email(username or kwargs.get("email"))
        if not email or password is None:
            return None
        try:
            user = User.objects.get(email=email)
        except User.DoesNotExist:
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
