from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class ConfigurableArgon2PasswordHasher(Argon2PasswordHasher):
    """argon2id with parameters from settings (defaults: OWASP's m=7 MiB, t=5, p=1; see bench/README.md).

    Hashes made with other parameters are rehashed at the next successful login
    (Django's `must_update` compares them with these).
    """

    algorithm = "argon2"

    def params(self) -> Any:
        argon2 = self._load_library()  # type: ignore[attr-defined]
        return argon2.Parameters(
            type=argon2.low_level.Type.ID,
            version=argon2.low_level.ARGON2_VERSION,
            salt_len=argon2.DEFAULT_RANDOM_SALT_LENGTH,
            hash_len=argon2.DEFAULT_HASH_LENGTH,
            time_cost=int(settings.ARGON2_TIME_COST),
            memory_cost=int(settings.ARGON2_MEMORY_COST_KIB),
            parallelism=int(settings.ARGON2_PARALLELISM),
        )
