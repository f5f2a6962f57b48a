"""FIELD_ENCRYPTION_KEY rotation: new key first, re-encrypt everything, drop the old key."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.events import EventType
from audit.models import AuditEvent
from core.crypto import DecryptionError, decrypt, encrypt, is_current
from mfa.models import TOTPFactor
from notifications.models import OutboxMessage

OLD, NEW = "old-field-key-0123456789abcdef", "new-field-key-fedcba9876543210"
SEED = "3132333435363738393031323334353637383930"


def _run(*args: str) -> str:
    out = StringIO()
    call_command("rotate_field_encryption", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def encrypted_under_old_key(settings: Any, user: Any) -> tuple[TOTPFactor, OutboxMessage, OutboxMessage]:
    settings.FIELD_ENCRYPTION_KEY = OLD
    factor = TOTPFactor(user=user, name="app", confirmed=True)
    factor.set_key(SEED)
    factor.save()
    pending = OutboxMessage.objects.create(
        channel=OutboxMessage.Channel.EMAIL,
        purpose="test",
        recipient=user.email,
        body_encrypted=encrypt("your code is 123456"),
        html_encrypted=encrypt("<p>your code is 123456</p>"),
    )
    sent = OutboxMessage.objects.create(
        channel=OutboxMessage.Channel.EMAIL, purpose="test", recipient=user.email, status=OutboxMessage.Status.SENT
    )
    return factor, pending, sent


def test_rotation_re_encrypts_every_secret_so_the_old_key_can_go(settings: Any, encrypted_under_old_key: Any) -> None:
    factor, pending, sent = encrypted_under_old_key
    settings.FIELD_ENCRYPTION_KEY = f"{NEW},{OLD}"  # step 1: the new key first, the old one still decrypts
    assert decrypt(TOTPFactor.objects.get(pk=factor.pk).key_encrypted) == SEED

    dry = _run("--dry-run")
    assert "mfa.TOTPFactor: 1 row(s) to re-encrypt" in dry
    assert "notifications.OutboxMessage: 1 row(s) to re-encrypt" in dry  # the sent one holds no body
    assert not is_current(TOTPFactor.objects.get(pk=factor.pk).key_encrypted)

    output = _run("--batch-size", "1")
    assert "mfa.TOTPFactor: 1 row(s) re-encrypted" in output
    assert "notifications.OutboxMessage: 1 row(s) re-encrypted" in output
    [event] = AuditEvent.objects.filter(type=EventType.FIELD_KEY_ROTATED)
    assert event.details == {"rows": 2}

    settings.FIELD_ENCRYPTION_KEY = NEW  # step 3: the old key is gone
    assert TOTPFactor.objects.get(pk=factor.pk).key_hex == SEED
    pending.refresh_from_db()
    assert decrypt(pending.body_encrypted) == "your code is 123456"
    assert decrypt(pending.html_encrypted) == "<p>your code is 123456</p>"
    sent.refresh_from_db()
    assert sent.body_encrypted == ""

    # Run again: nothing left to do, no new audit row.
    settings.FIELD_ENCRYPTION_KEY = f"{NEW},{OLD}"
    assert "mfa.TOTPFactor: 0 row(s) re-encrypted" in _run()
    assert AuditEvent.objects.filter(type=EventType.FIELD_KEY_ROTATED).count() == 1


def test_without_the_old_key_rotation_refuses_and_changes_nothing(settings: Any, encrypted_under_old_key: Any) -> None:
    factor, _pending, _sent = encrypted_under_old_key
    before = factor.key_encrypted
    settings.FIELD_ENCRYPTION_KEY = NEW  # the old key dropped too early
    with pytest.raises(DecryptionError):
        decrypt(before)
    with pytest.raises(CommandError, match="could not be decrypted"):
        _run()
    assert TOTPFactor.objects.get(pk=factor.pk).key_encrypted == before
    assert not AuditEvent.objects.filter(type=EventType.FIELD_KEY_ROTATED).exists()
