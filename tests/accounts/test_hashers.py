"""The argon2id hasher: verified by libsodium where it can, the stored strings unchanged.

The portal's argon2id hashes (argon2-cffi's PHC strings) are verified through libsodium (PyNaCl),
which computes the same function faster (bench/README.md, "Seventh round"). What a customer would
notice if this went wrong: a right password refused, a wrong one accepted, a login that rehashes
every time, or hashes that no longer verify after a rollback to argon2-cffi alone.
"""

from __future__ import annotations

from typing import Any

import argon2
import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.test import override_settings
from nacl.pwhash import argon2id

from accounts.hashers import ConfigurableArgon2PasswordHasher, sodium_can_verify

PASSWORD = "a long and unusual passphrase, with ümlauts"


@pytest.fixture
def cffi_verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every verification argon2-cffi makes (and still makes it)."""
    calls: list[str] = []
    verify = argon2.PasswordHasher.verify

    def recording(self: Any, hash: str, password: str | bytes) -> Any:
        calls.append(hash)
        return verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", recording)
    return calls


def test_the_portals_hashes_are_verified_by_libsodium(cffi_verify_calls):
    encoded = make_password(PASSWORD)
    assert encoded.startswith("argon2$argon2id$v=19$m=1024,t=1,p=1$")  # the test settings' parameters
    assert check_password(PASSWORD, encoded) is True
    assert check_password(PASSWORD + " ", encoded) is False
    assert check_password("", encoded) is False
    assert cffi_verify_calls == []  # libsodium answered all three


def test_a_verified_hash_is_not_rehashed_at_every_login():
    encoded = make_password(PASSWORD)
    hasher = ConfigurableArgon2PasswordHasher()
    assert hasher.verify(PASSWORD, encoded)
    assert hasher.must_update(encoded) is False
    with override_settings(ARGON2_TIME_COST=2):  # a change of parameters still rehashes
        assert hasher.must_update(encoded) is True


def test_hashes_move_both_ways_between_argon2_cffi_and_libsodium():
    # What argon2-cffi made (the hashes stored before this change) libsodium verifies, and what
    # libsodium makes argon2-cffi verifies: a rollback to argon2-cffi alone loses no password.
    made_by_sodium = argon2id.str(PASSWORD.encode(), opslimit=1, memlimit=1024 * 1024).decode()
    assert argon2.PasswordHasher().verify(made_by_sodium, PASSWORD)
    assert check_password(PASSWORD, "argon2" + made_by_sodium)
    made_by_cffi = make_password(PASSWORD)
    assert argon2.PasswordHasher().verify(made_by_cffi.removeprefix("argon2"), PASSWORD)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(made_by_cffi.removeprefix("argon2"), "wrong")


@pytest.mark.parametrize(
    "kind",
    [
        argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2),  # p > 1: libsodium computes p=1 only
        argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.I),
        argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, salt_len=64),  # longer than 127
    ],
    ids=["parallelism-2", "argon2i", "long-salt"],
)
def test_a_hash_libsodium_cannot_take_is_verified_by_argon2_cffi(kind, cffi_verify_calls):
    encoded = "argon2" + kind.hash(PASSWORD)
    assert not sodium_can_verify(encoded.removeprefix("argon2"))
    assert check_password(PASSWORD, encoded) is True
    assert check_password("wrong password", encoded) is False
    assert len(cffi_verify_calls) == 2


def test_a_damaged_stored_hash_refuses_the_password_without_an_error():
    encoded = make_password(PASSWORD)
    assert check_password(PASSWORD, encoded[:-4] + "!!!!") is False
    assert check_password(PASSWORD, encoded.rsplit("$", 1)[0] + "$") is False


def test_foreign_strings_are_not_sent_to_libsodium():
    assert not sodium_can_verify("$argon2id$v=19$m=1024,t=1,p=1$" + "é" * 10 + "$abc")
    assert not sodium_can_verify("$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g")
    assert not sodium_can_verify("$2b$12$abcdefghijklmnopqrstuu")
