"""Helpers other areas' API tests use: real bearer tokens for a user, without the login endpoint.

from tests.api.helpers import issue_tokens, bearer
tokens = issue_tokens(user)                    # {"access", "refresh", "sid", ...}
client = APIClient(); client.credentials(**bearer(tokens))   # or client.get(url, **bearer(tokens))
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import RequestFactory

from accounts.api.services import login_complete
from accounts.models import User

APP_USER_AGENT = "BankPortal/1.0 (iPhone; iOS 18.0)"


def issue_tokens(
    user: User, *, amr: list[str] | None = None, device_id: str = "", ip: str = "203.0.113.10"
) -> dict[str, Any]:
    """Starts a real mobile login (token family) for the user, as a successful /auth/login does."""
    request = RequestFactory().post("/api/v1/auth/login", REMOTE_ADDR=ip, HTTP_USER_AGENT=APP_USER_AGENT)
    pair = login_complete(request=request, user=user, amr=amr or ["pwd"], device_id=device_id)
    return {**pair.as_response(), "sid": pair.sid}


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    """Keyword arguments for Client/APIClient carrying the access token."""
    access = tokens if isinstance(tokens, str) else tokens["access"]
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def prod_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check` under the prod settings with every required variable but the JWT ones,
    then `overrides` (the JWT ones among them); a start-up refusal is a non-zero exit with the reason
    on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWT_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "DJANGO_SECRET_KEY": "p" * 60,
            "FIELD_ENCRYPTION_KEY": "f" * 44,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
            "REDIS_URL": "redis://127.0.0.1:6379/9",
            "EMAIL_URL": "smtp://127.0.0.1:1025",
            "ALLOWED_HOSTS": "portal.bank.test",
            "PUBLIC_BASE_URL": "https://portal.bank.test",
            **overrides,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
