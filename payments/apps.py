from __future__ import annotations

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Accounts and payments"

    def ready(self) -> None:
        from payments import cache  # noqa: F401 (connects the account lists' invalidation)
