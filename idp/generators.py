from __future__ import annotations

from oauth2_provider.generators import BaseHashGenerator

from idp.models import generate_client_id, generate_client_secret


class ClientIdGenerator(BaseHashGenerator):
    def hash(self) -> str:
        return generate_client_id()


class ClientSecretGenerator(BaseHashGenerator):
    """256 random bits, prefixed "bps_": stored with the keyed fast hash (idp.hashers)."""

    def hash(self) -> str:
        return generate_client_secret()
