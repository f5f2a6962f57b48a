from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import ngettext


class MaximumLengthValidator:
    """Long passphrases are welcome; only absurd lengths (a hashing DoS) are refused."""

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext(
                    "This password is too long. It must contain at most %(max_length)d character.",
                    "This password is too long. It must contain at most %(max_length)d characters.",
                    self.max_length,
                ),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return f"Your password can be up to {self.max_length} characters long."


class BreachedPasswordValidator:
    """Refuses a password known from a data breach (accounts.passwords.is_breached: the offline
    list, and the Pwned Passwords range API when BREACHED_PASSWORDS_ONLINE is on)."""

    def validate(self, password: str, user: Any = None) -> None:
        from accounts.passwords import is_breached

        if is_breached(password):
            raise ValidationError(
                "This password has appeared in a data breach elsewhere, so attackers try it early. "
                "Please choose a different one.",
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return "Your password must not be one that has appeared in a known data breach."


class StrengthValidator:
    """Refuses a password that zxcvbn scores below `min_score` (0-4), with the user's email and
    name as guessable words: the same verdict as the strength meter in the browser."""

    def __init__(self, min_score: int = 3) -> None:
        self.min_score = min_score

    def validate(self, password: str, user: Any = None) -> None:
        from django.conf import settings

        from accounts.passwords import password_strength, strength_user_inputs

        if len(password) > settings.PASSWORD_MAX_LENGTH:
            return  # refused by MaximumLengthValidator; not worth scoring
        inputs = strength_user_inputs(getattr(user, "email", "") or "", getattr(user, "full_name", "") or "")
        strength = password_strength(password, inputs)
        if strength.score < self.min_score:
            advice = " ".join(part for part in [strength.warning, *strength.suggestions] if part)
            raise ValidationError(
                "This password is too easy to guess (strength %(score)d of 4, at least %(min_score)d needed)."
                + (" %(advice)s" if advice else ""),
                code="password_too_weak",
                params={"score": strength.score, "min_score": self.min_score, "advice": advice},
            )

    def get_help_text(self) -> str:
        return f"Your password must be hard to guess: strength {self.min_score} of 4 or more."
