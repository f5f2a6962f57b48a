"""The provider's names and numbers, read from settings at call time (tests may override them)."""

from __future__ import annotations

from django.conf import settings

SCOPE_OPENID = "openid"
SCOPE_EMAIL = "email"
SCOPE_OFFLINE = "offline_access"
SCOPE_READ_ACCOUNTS = "read:accounts"
SCOPE_READ_PAYMENTS = "read:payments"
SCOPE_WRITE_PAYMENTS = "write:payments"

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"  # noqa: S105 (a JWT `typ`, not a secret)
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105


def issuer() -> str:
    """The issuer (`iss` of every provider token, and the discovery document's base)."""
    return str(getattr(settings, "IDP_ISSUER", "") or settings.PUBLIC_BASE_URL).rstrip("/")


def audience() -> str:
    """`aud` of provider access tokens: the bank's resource APIs (RFC 9068)."""
    return str(getattr(settings, "IDP_API_AUDIENCE", "") or f"{settings.PUBLIC_BASE_URL}/api/v1")


def access_lifetime() -> int:
    return int(settings.OAUTH2_PROVIDER.get("ACCESS_TOKEN_EXPIRE_SECONDS", 900))


def id_token_lifetime() -> int:
    return int(settings.OAUTH2_PROVIDER.get("ID_TOKEN_EXPIRE_SECONDS", 300))


def logout_token_lifetime() -> int:
    return int(getattr(settings, "IDP_LOGOUT_TOKEN_LIFETIME_SECONDS", 120))
