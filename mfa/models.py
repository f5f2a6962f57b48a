"""Second factors of a user, the out-of-band code challenges, and per-user MFA state.

Every factor is a django-otp `Device` (user, name, confirmed), so django-otp's session
verification works with each of them. Secrets at rest: the TOTP seed is encrypted with
core.crypto; one-time and recovery codes are stored only as keyed hashes.
"""

from __future__ import annotations

import time
import uuid
from base64 import b32encode
from binascii import unhexlify
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device
from django_otp.oath import TOTP

from core.crypto import constant_time_equals, decrypt, encrypt, keyed_hash

CODE_HASH_PURPOSE = "mfa-code"
RECOVERY_HASH_PURPOSE = "mfa-recovery-code"


class TOTPFactor(Device):
    """An RFC 6238 authenticator app. The seed (hex) is encrypted at rest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_totp_factors")

    key_encrypted = models.TextField()
    step = models.PositiveSmallIntegerField(default=30)
    digits = models.PositiveSmallIntegerField(default=6)
    last_t = models.BigIntegerField(default=-1, help_text="Time step of the last accepted code.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "authenticator app"

    @property
    def key_hex(self) -> str:
        return decrypt(self.key_encrypted)

    def set_key(self, key_hex: str) -> None:
        self.key_encrypted = encrypt(key_hex)

    @property
    def base32_secret(self) -> str:
        return b32encode(unhexlify(self.key_hex)).decode().rstrip("=")

    def config_url(self, *, issuer: str) -> str:
        issuer = issuer.replace(":", "")
        label = f"{issuer}:{self.user.get_username()}"
        params = urlencode(
            {"secret": self.base32_secret, "algorithm": "SHA1", "digits": self.digits, "period": self.step}
        )
        return f"otpauth://totp/{quote(label)}?{params}&issuer={quote(issuer)}"

    def verify_token(self, token: Any) -> bool:
        """Accepts the current code or one step either side, each time step only once."""
        try:
            value = int(str(token).strip())
        except (TypeError, ValueError):
            return False
        totp = TOTP(unhexlify(self.key_hex), self.step, 0, self.digits, 0)
        totp.time = time.time()
        if not totp.verify(value, settings.MFA_TOTP_TOLERANCE_STEPS, self.last_t + 1):
            return False
        self.last_t = totp.t()
        self.last_used_at = timezone.now()
        self.save(update_fields=["last_t", "last_used_at"])
        return True


class SMSFactor(Device):
    """Codes by text message to a phone number (E.164)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_sms_factors")

    phone = models.CharField(max_length=20)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "text message factor"

    @property
    def masked_destination(self) -> str:
        return f"{self.phone[:3]}•••••{self.phone[-3:]}"


class EmailFactor(Device):
    """Codes by email to the account's address."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_email_factors")

    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "email code factor"

    @property
    def masked_destination(self) -> str:
        local, _, domain = self.email.partition("@")
        return f"{local[:1]}•••@{domain}"


class WebAuthnCredential(Device):
    """A passkey or security key registered with py_webauthn."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_passkeys")

    credential_id = models.CharField(max_length=1400, unique=True, help_text="base64url")
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=64, blank=True)
    backed_up = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "passkey"


class RecoveryCodeSet(Device):
    """One set of recovery codes; generating a new set deletes the old one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_recovery_code_sets")

    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "recovery code set"

    @staticmethod
    def normalise(code: str) -> str:
        return "".join(ch for ch in str(code).lower() if ch.isalnum())

    def verify_token(self, token: Any) -> bool:
        digest = keyed_hash(self.normalise(token), purpose=RECOVERY_HASH_PURPOSE)
        for code in self.codes.select_for_update().filter(used_at__isnull=True):
            if constant_time_equals(code.code_hash, digest):
                code.used_at = timezone.now()
                code.save(update_fields=["used_at"])
                self.last_used_at = code.used_at
                self.save(update_fields=["last_used_at"])
                return True
        return False

    @property
    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()


class RecoveryCode(models.Model):
    code_set = models.ForeignKey(RecoveryCodeSet, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code {self.pk} ({'used' if self.used_at else 'unused'})"


class CodeChallenge(models.Model):
    """One code sent by SMS or email, for one purpose, possibly bound to what it authorises."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_challenges")
    method = models.CharField(max_length=8)
    purpose = models.CharField(max_length=64)
    binding = models.CharField(max_length=128, blank=True)
    code_hash = models.CharField(max_length=64)
    sent_to = models.CharField(max_length=254, help_text="Masked destination")
    factor_id = models.BigIntegerField(null=True, blank=True, help_text="SMS/email factor the code went to")
    outbox_message_id = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "purpose", "created_at"])]

    def __str__(self) -> str:
        return f"{self.method} code for {self.purpose} ({self.id})"

    @property
    def is_live(self) -> bool:
        return self.used_at is None and self.voided_at is None and self.expires_at > timezone.now()

    def matches(self, code: str) -> bool:
        return constant_time_equals(self.code_hash, keyed_hash(code.strip(), purpose=CODE_HASH_PURPOSE))


class MFAState(models.Model):
    """Per-user MFA bookkeeping: preferred method, consecutive failures and the lock."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_state")
    preferred_method = models.CharField(max_length=16, blank=True)
    consecutive_failures = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    enrol_prompt_dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "MFA state"

    def __str__(self) -> str:
        return f"MFA state of {self.user_id}"
