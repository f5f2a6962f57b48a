from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and sign-in"

    def ready(self) -> None:
        from accounts import (
            checks,  # noqa: F401 (registers the system checks)
            usercache,  # noqa: F401 (connects the user cache's invalidation)
        )
