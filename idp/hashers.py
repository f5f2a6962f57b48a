"""CLIENT_SECRET_HASHER: a keyed fast hash for the provider's generated 256-bit client secrets.

Issue 15 measured django-oauth-toolkit hashing the secret with the first PASSWORD_HASHERS entry
(argon2id) on every token request. A slow hash protects guessable secrets; a secret of 256
random bits cannot be guessed, so HMAC-SHA256 under a server key (core.crypto.keyed_hash) is
as safe and costs microseconds. Human-chosen secrets keep argon2id (idp.models).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash

from core.crypto import constant_time_equals, keyed_hash

PURPOSE = "oauth-client-secret"


class KeyedSecretHasher(BasePasswordHasher):
    algorithm = "idp_keyed_sha256"

    def encode(self, password: str, salt: str) -> str:
        if password is None or not salt or "$" in salt:
            raise ValueError("a password and a salt without $ are required")
        return f"{self.algorithm}${salt}${keyed_hash(salt + '$' + password, purpose=PURPOSE)}"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return constant_time_equals(self.encode(password, decoded["salt"]), encoded)

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        return None
