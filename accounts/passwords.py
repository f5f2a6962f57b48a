"""Password quality: the breached-password check and the strength estimate, shared by the
validators (sign-up, change, reset), the login (a breached current password must be changed) and
the strength meter in the browser.

- `is_breached(password)`: the offline list first (`BREACHED_PASSWORDS_FILE`, a sorted SHA-1 prefix
  file, see accounts/breached.py; a small list ships in accounts/data/), then, only when
  `BREACHED_PASSWORDS_ONLINE` is on, the Pwned Passwords range API through pwned-passwords-django:
  only the first 5 hex characters of the SHA-1 leave the server, with `Add-Padding: true`, within
  `BREACHED_PASSWORDS_API_TIMEOUT`. When the API fails or times out the answer is the offline one
  (fail open to offline): a sign-up never waits on, or breaks because of, an outside service.
- `password_strength(password, user_inputs)`: zxcvbn's score (0-4) with the same library version,
  the same reference year and the same user inputs (`strength_user_inputs`) as the meter's
  vendored zxcvbn.js, so the browser and the server agree.
- `require_password_change(request)`: the session flag that keeps a signed-in customer on the
  password change page until the password is changed (accounts.password_change).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.breached import BreachedListError, open_prefix_file

logger = logging.getLogger(__name__)

PASSWORD_CHANGE_REQUIRED_SESSION_KEY = "password_change_required"  # noqa: S105 (a session key name)
SHIPPED_BREACHED_FILE = Path(__file__).resolve().parent / "data" / "breached-passwords.bin"


# --- Breached passwords ----------------------------------------------------------------------


def _sha1(password: str) -> bytes:
    # SHA-1 because that is how the breach corpora are keyed; it protects nothing here.
    return hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).digest()


def in_offline_list(password: str) -> bool:
    """True when the password's SHA-1 is in the configured file. A missing or damaged file is
    logged and counts as "not found" (the system check `accounts.E001` reports it at start-up)."""
    try:
        return open_prefix_file(Path(settings.BREACHED_PASSWORDS_FILE)).contains_digest(_sha1(password))
    except (OSError, BreachedListError) as exc:
        logger.error("breached-password file unusable: %s", exc)
        return False


@lru_cache(maxsize=4)
def _range_client(endpoint: str, timeout: float, padding: bool) -> Any:
    import httpx
    from pwned_passwords_django.api import PwnedPasswords

    # The library reads its timeout and padding from settings.PWNED_PASSWORDS; ours are passed
    # explicitly so that one setting of our own names them.
    client = PwnedPasswords()
    client.api_endpoint = endpoint.rstrip("/") + "/"
    client.request_timeout = httpx.Timeout(timeout)
    client.add_padding = padding
    return client


@sensitive_variables("password")
def in_online_list(password: str) -> bool | None:
    """The range API's answer, or None when it could not be had (error, timeout, refusal)."""
    from pwned_passwords_django.exceptions import PwnedPasswordsError

    client = _range_client(
        settings.BREACHED_PASSWORDS_API_URL,
        float(settings.BREACHED_PASSWORDS_API_TIMEOUT),
        bool(settings.BREACHED_PASSWORDS_API_PADDING),
    )
    try:
        return int(client.check_password(password)) > 0
    except PwnedPasswordsError as exc:
        logger.warning("Pwned Passwords range API unavailable (%s); the offline list decides", exc.code)
        return None


@sensitive_variables("password")
def is_breached(password: str) -> bool:
    """True when the password appears in a known breach (offline list, then the API when enabled)."""
    if in_offline_list(password):
        return True
    if settings.BREACHED_PASSWORDS_ONLINE:
        return bool(in_online_list(password))
    return False


# --- Strength (zxcvbn) -----------------------------------------------------------------------

# zxcvbn (Python) keeps the user inputs of a call in a module-level dictionary: two threads
# scoring at once would mix each other's inputs, so calls are serialised.
_zxcvbn_lock = threading.Lock()
# The same split as static/js/password-strength.js (userInputs).
_INPUT_SEPARATORS = re.compile(r"[\s._+@'-]+")


@dataclass(frozen=True)
class Strength:
    score: int
    warning: str = ""
    suggestions: list[str] = field(default_factory=list)


def strength_user_inputs(*values: str) -> list[str]:
    """What zxcvbn should treat as guessable for this person: each value (email, name), the
    email's local part, and their words. Lowercased, as zxcvbn does."""
    inputs: list[str] = []
    for value in values:
        value = (value or "").strip().lower()
        if not value:
            continue
        parts = [value]
        if "@" in value:
            parts.append(value.split("@", 1)[0])
        parts.extend(_INPUT_SEPARATORS.split(value))
        for part in parts:
            if part and part not in inputs:
                inputs.append(part)
    return inputs


@sensitive_variables("password")
def password_strength(password: str, user_inputs: list[str] | None = None) -> Strength:
    from zxcvbn import scoring, zxcvbn

    with _zxcvbn_lock:
        # zxcvbn.js 4.4.2 scores years against the current year; the Python port has 2017 built in.
        scoring.REFERENCE_YEAR = timezone.now().year
        result = zxcvbn(password, user_inputs or [], max_length=max(len(password), 1))
    feedback = result.get("feedback") or {}
    return Strength(
        score=int(result["score"]),
        warning=str(feedback.get("warning") or ""),
        suggestions=[str(s) for s in feedback.get("suggestions") or []],
    )


# --- "Change your password" after login -----------------------------------------------------------


def require_password_change(request: HttpRequest) -> None:
    """Keeps this signed-in session on the password change page until the password changes.

    The login pipeline calls it when `is_breached` says the password just used is breached.
    The flag holds the time it was set; a password changed after that time clears it.
    """
    request.session[PASSWORD_CHANGE_REQUIRED_SESSION_KEY] = timezone.now().timestamp()


def password_change_required(request: HttpRequest) -> bool:
    return bool(request.session.get(PASSWORD_CHANGE_REQUIRED_SESSION_KEY))


def min_strength_score() -> int | None:
    """The zxcvbn score StrengthValidator asks for, or None when it is not configured."""
    from django.contrib.auth.password_validation import get_default_password_validators

    from accounts.validators import StrengthValidator

    for validator in get_default_password_validators():
        if isinstance(validator, StrengthValidator):
            return validator.min_score
    return None
