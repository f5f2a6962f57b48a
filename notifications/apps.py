from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Outgoing messages"

    def ready(self) -> None:
        from core.metrics import register_reader
        from notifications.metrics import outbox_gauges

        register_reader("outbox", outbox_gauges)
