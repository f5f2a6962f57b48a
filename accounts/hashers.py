from __future__ import annotations

from typing import Any

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from nacl.exceptions import InvalidkeyError
from nacl.pwhash import argon2id

# libsodium's argon2id string format is RFC 9106's PHC string, the one argon2-cffi writes, and it
# verifies only p=1 (what it computes itself) in strings of at most 127 bytes.
_SODIUM_MAX_ENCODED = 127


class ConfigurableArgon2PasswordHasher(Argon2PasswordHasher):
    """argon2id with parameters from settings (defaults: OWASP's m=7 MiB, t=5, p=1; see bench/README.md).

    Hashes made with other parameters are rehashed at the next successful login
    (Django's `must_update` compares them with these).

    Verification goes through libsodium (PyNaCl) when it can: the same argon2id with the same
    parameters and the same stored string, computed with libsodium's AVX2 block function where the
    CPU has it, which costs 25-40 % less CPU per verification than argon2-cffi's SSE2 build under
    concurrent logins (bench/README.md, "Seventh round"). A hash libsodium cannot verify (p > 1,
    another argon2 variant, an unusual length) goes to argon2-cffi, as in Django. Hashing stays
    with argon2-cffi: Django's salt (22 characters, 128 bits) does not fit libsodium's fixed
    16-byte salt, and a libsodium salt would read as too weak to Django's `must_update`, so every
    login would rehash.
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

    def verify(self, password: str, encoded: str) -> bool:
        phc = encoded[len(self.algorithm) :]
        if encoded.startswith(self.algorithm + "$") and sodium_can_verify(phc):
            try:
                return bool(argon2id.verify(phc.encode("ascii"), password.encode()))
            except InvalidkeyError:  # a wrong password (libsodium tells nothing more)
                return False
        return bool(super().verify(password, encoded))


def sodium_can_verify(phc: str) -> bool:
    """True for an argon2id v19 PHC string with p=1 that libsodium accepts as it is."""
    if not phc.startswith("$argon2id$v=19$") or len(phc) > _SODIUM_MAX_ENCODED or not phc.isascii():
        return False
    try:
        return bool(extract_parameters(phc).parallelism == 1)
    except InvalidHashError:
        return False  # argon2-cffi answers a malformed hash as Django does
