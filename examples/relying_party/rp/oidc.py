"""The provider, as this relying party sees it: authlib's Django client, configured from discovery.

authlib does the protocol (authorization request with state, nonce and PKCE S256, the code
exchange with the verifier, client authentication, the end-session URL); `rp.tokens` validates
what comes back, with the issuer and client id of our settings rather than anything a response says.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings

from rp.tokens import TokenRejected, validate_id_token

log = logging.getLogger("rp.oidc")


class PortalClient(DjangoOAuth2App):
    """authlib's Django app with our ID token validation in place of its default one."""

    def load_server_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = super().load_server_metadata()
        # OpenID Connect Discovery §4.3: the document must be the configured issuer's own.
        if metadata.get("issuer") != settings.OIDC_ISSUER:
            self.server_metadata.pop("_loaded_at", None)
            raise TokenRejected(f"discovery names issuer {metadata.get('issuer')!r}, not {settings.OIDC_ISSUER!r}")
        return metadata

    _forced_at: float = 0.0

    def jwks(self, force: bool = False) -> dict[str, Any]:
        """The provider's keys, cached; refetched for an unknown kid, at most once a minute, so that
        tokens with made-up kids posted to the back-channel endpoint cannot make us hammer the JWKS."""
        if force and time.time() - self._forced_at < settings.OIDC_JWKS_REFRESH_SECONDS:
            force = False
        if force:
            self._forced_at = time.time()
        keys: dict[str, Any] = self.fetch_jwk_set(force=force)
        return keys

    def parse_id_token(
        self,
        token: dict[str, Any],
        nonce: str,
        claims_options: Any = None,
        claims_cls: Any = None,
        leeway: int = 120,
    ) -> dict[str, Any] | None:
        if "id_token" not in token:
            return None
        return validate_id_token(
            token["id_token"],
            keys=self.jwks,
            issuer=settings.OIDC_ISSUER,
            client_id=settings.OIDC_CLIENT_ID,
            nonce=nonce,
            access_token=str(token.get("access_token", "")),
            leeway=settings.OIDC_LEEWAY_SECONDS,
        )


class _OAuth(OAuth):
    oauth2_client_cls = PortalClient


_client: PortalClient | None = None


def client() -> PortalClient:
    """The one client of this process, registered on first use (settings are read then)."""
    global _client
    if _client is None:
        kwargs: dict[str, Any] = {
            "scope": settings.OIDC_SCOPES,
            "code_challenge_method": "S256",
            "timeout": settings.OIDC_HTTP_TIMEOUT_SECONDS,
        }
        if not settings.OIDC_CLIENT_SECRET:
            kwargs["token_endpoint_auth_method"] = "none"  # noqa: S105 (a public client: PKCE, no secret)
        registry = _OAuth()
        registry.register(
            "portal",
            client_id=settings.OIDC_CLIENT_ID,
            client_secret=settings.OIDC_CLIENT_SECRET or None,
            server_metadata_url=f"{settings.OIDC_ISSUER}/.well-known/openid-configuration",
            client_kwargs=kwargs,
        )
        _client = registry.create_client("portal")
    return _client


def reset() -> None:
    """Forget the registered client and its cached discovery document and keys (tests)."""
    global _client
    _client = None
