"""System checks: the breached-password file must be there and readable before the portal serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def breached_passwords_file(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from accounts.breached import BreachedListError, open_prefix_file

    path = Path(settings.BREACHED_PASSWORDS_FILE)
    try:
        open_prefix_file(path)
    except (OSError, BreachedListError) as exc:
        return [
            Error(
                f"The breached-password file cannot be used: {exc}",
                hint="Set BREACHED_PASSWORDS_FILE to a file built by `manage.py import_breached_passwords`, "
                "or unset it to use the list shipped in accounts/data/.",
                id="accounts.E001",
            )
        ]
    return []
