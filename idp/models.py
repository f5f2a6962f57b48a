"""The provider's models: django-oauth-toolkit's, swapped in so that each carries the login it belongs to.

A grant (authorization code) records how the web session was authenticated (sid, auth_time,
amr) when the user approved, because the token endpoint has no browser session to read it
from. Access and refresh tokens keep the `sid` of that login and the access token its `jti`,
so ending the login or revoking a grant reaches every JWT through the Redis revocation list.
Tokens are stored hashed (RFC 9700 token storage: only a SHA-256 checksum is kept).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import identify_hasher, make_password
from django.db import models
from django.utils import timezone
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
    ApplicationManager,
    ClientSecretField,
)

# Secrets that this provider generates: "bps_" + 256 random bits (base64url, 43 characters).
GENERATED_SECRET = re.compile(r"^bps_[A-Za-z0-9_-]{43}$")


def generate_client_secret() -> str:
    return "bps_" + secrets.token_urlsafe(32)


def generate_client_id() -> str:
    return secrets.token_urlsafe(18)


class KeyedClientSecretField(ClientSecretField):
    """Hashes a generated 256-bit secret with the keyed fast hash (CLIENT_SECRET_HASHER), and a
    human-chosen one with the first PASSWORD_HASHERS entry (argon2id): a random 256-bit secret
    cannot be guessed, so a slow hash only costs every token request (measured in issue 15)."""

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        secret = getattr(model_instance, self.attname)
        if not secret or not getattr(model_instance, "hash_client_secret", True):
            return models.CharField.pre_save(self, model_instance, add)
        try:
            identify_hasher(secret)
        except ValueError:
            if GENERATED_SECRET.match(secret):
                hashed = make_password(secret, hasher=settings.OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"])
            else:
                hashed = make_password(secret)  # the default hasher: argon2id
            setattr(model_instance, self.attname, hashed)
            return hashed
        return models.CharField.pre_save(self, model_instance, add)


class Client(AbstractApplication):
    """A relying party or a service. `skip_authorization` marks a trusted first-party client
    (no consent page)."""

    client_id = models.CharField(max_length=255, unique=True, default=generate_client_id, db_index=True)
    client_secret: models.CharField[str, str] = KeyedClientSecretField(
        max_length=255, blank=True, default=generate_client_secret, db_index=True
    )
    allowed_scopes = models.TextField(
        blank=True, default="openid", help_text="Scopes this client may ask for, space separated"
    )
    backchannel_logout_uri = models.URLField(
        max_length=500, blank=True, help_text="OpenID Connect Back-Channel Logout endpoint of the client"
    )
    is_active = models.BooleanField(default=True)
    # Issue 18: the FAPI 2.0 security profile and its parts (README, "FAPI 2.0 profile").
    fapi = models.BooleanField(
        default=False,
        verbose_name="FAPI 2.0 profile",
        help_text="PAR, PKCE S256, private_key_jwt (confidential), DPoP-bound tokens, ES256 tokens",
    )
    require_par = models.BooleanField(
        default=False, verbose_name="Require PAR", help_text="Authorization requests only through /o/par/"
    )
    token_endpoint_auth_method = models.CharField(
        max_length=32,
        blank=True,
        choices=[("", "client secret (basic or post)"), ("private_key_jwt", "private_key_jwt (RFC 7523)")],
        help_text="How a confidential client authenticates itself",
    )
    jwks = models.JSONField(null=True, blank=True, help_text="The client's public keys (a JWKS), for private_key_jwt")
    jwks_uri = models.URLField(max_length=500, blank=True, help_text="Where the client's JWKS is published")

    objects = ApplicationManager()

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "OAuth client"

    def natural_key(self) -> tuple[str]:
        return (self.client_id,)

    @property
    def trusted(self) -> bool:
        return bool(self.skip_authorization)

    @property
    def par_required(self) -> bool:
        return bool(self.require_par or self.fapi)

    @property
    def uses_private_key_jwt(self) -> bool:
        return self.token_endpoint_auth_method == "private_key_jwt"  # noqa: S105 (a method name)

    @property
    def dpop_required(self) -> bool:
        return bool(self.fapi)

    @property
    def signing_algorithm(self) -> str:
        """The algorithm of this client's ID tokens and access tokens (FAPI: ES256)."""
        return "ES256" if self.fapi else "RS256"

    @property
    def scope_list(self) -> list[str]:
        return self.allowed_scopes.split()

    def is_usable(self, request: Any) -> bool:
        return bool(self.is_active)

    def clean(self) -> None:
        # RS256 with the accounts key ring (not DOT's OIDC_RSA_PRIVATE_KEY); HS256 is not offered.
        algorithm: str = str(getattr(self, "algorithm", ""))
        self.algorithm = ""
        try:
            super().clean()
        finally:
            self.algorithm = algorithm
        from django.core.exceptions import ValidationError

        if algorithm not in ("", AbstractApplication.RS256_ALGORITHM):
            raise ValidationError({"algorithm": "Only RS256 is offered."})
        if self.authorization_grant_type not in (
            AbstractApplication.GRANT_AUTHORIZATION_CODE,
            AbstractApplication.GRANT_CLIENT_CREDENTIALS,
        ):
            raise ValidationError(
                {"authorization_grant_type": "Only authorization code and client credentials are offered."}
            )
        if (
            self.authorization_grant_type == AbstractApplication.GRANT_CLIENT_CREDENTIALS
            and self.client_type != AbstractApplication.CLIENT_CONFIDENTIAL
        ):
            raise ValidationError({"client_type": "A client-credentials client must be confidential."})
        if self.uses_private_key_jwt:
            if self.client_type != AbstractApplication.CLIENT_CONFIDENTIAL:
                raise ValidationError({"token_endpoint_auth_method": "private_key_jwt is for confidential clients."})
            if not self.jwks and not self.jwks_uri:
                raise ValidationError({"jwks": "private_key_jwt needs the client's keys: a JWKS or a JWKS URI."})
        if self.jwks_uri and not self.jwks_uri.startswith("https://") and not settings.IDP_ALLOW_HTTP_REDIRECTS:
            raise ValidationError({"jwks_uri": "The JWKS URI must use https."})
        if self.jwks is not None and self.jwks != "":
            from idp.client_auth import jwks_problem

            problem = jwks_problem(self.jwks)
            if problem:
                raise ValidationError({"jwks": problem})
        if self.fapi:
            from accounts import eckey

            if not eckey.configured():
                raise ValidationError(
                    {"fapi": "FAPI 2.0 clients get ES256 tokens: set JWT_EC_PRIVATE_KEY(_FILE) first."}
                )
        if self.fapi and self.client_type == AbstractApplication.CLIENT_CONFIDENTIAL and not self.uses_private_key_jwt:
            raise ValidationError(
                {"token_endpoint_auth_method": "A FAPI 2.0 confidential client authenticates with private_key_jwt."}
            )


class Grant(AbstractGrant):
    """An authorization code, with how the approving session was authenticated."""

    sid = models.CharField(max_length=64, blank=True)
    auth_time = models.DateTimeField(null=True, blank=True)
    amr = models.JSONField(default=list, blank=True)
    # RFC 9449 10: the code is bound to this DPoP key (dpop_jkt, or the PAR request's proof).
    dpop_jkt = models.CharField(max_length=64, blank=True)

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"


class IDToken(AbstractIDToken):
    sid = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"


class AccessToken(AbstractAccessToken):
    jti = models.CharField(max_length=64, blank=True, db_index=True)
    sid = models.CharField(max_length=64, blank=True, db_index=True)
    dpop_jkt = models.CharField(max_length=64, blank=True)  # cnf.jkt of the JWT (RFC 9449 6)

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"

    def revoke(self) -> None:
        """DOT deletes the row; the JWT itself would still verify, so its jti is listed too."""
        from idp import services

        jti = self.jti
        super().revoke()
        services.revoke_jtis([jti], reason="token_revoked")


class RefreshToken(AbstractRefreshToken):
    """A refresh token; `token_family` is the grant (every rotation of one authorization)."""

    sid = models.CharField(max_length=64, blank=True, db_index=True)
    auth_time = models.DateTimeField(null=True, blank=True)
    amr = models.JSONField(default=list, blank=True)
    # A public client's refresh token works only with a proof of this key (RFC 9449 5).
    dpop_jkt = models.CharField(max_length=64, blank=True)

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"

    @classmethod
    def revoke_family(cls, token_family: Any) -> None:
        """Reuse detected (or the grant revoked): DOT's revocation, plus every JWT of the family
        stops at once through the revocation list (a JWT verifies without the database)."""
        if not token_family:
            return
        from idp import services

        jtis = list(
            AccessToken.objects.filter(
                pk__in=cls.objects.filter(token_family=token_family).values("access_token_id")
            ).values_list("jti", flat=True)
        )
        super().revoke_family(token_family)
        services.revoke_jtis(jtis, reason="grant_revoked")


class Consent(models.Model):
    """What a user allowed a third-party client to do (shown under /security/apps/)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE)
    scope = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client"], name="idp_consent_user_client")]

    def __str__(self) -> str:
        return f"Consent of {self.user_id} to {self.client_id}"
