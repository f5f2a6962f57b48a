from __future__ import annotations

from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    verbose_name = "Devices and sign-in risk"

    def ready(self) -> None:
        from accounts.signals import password_changed
        from risk import receivers

        password_changed.connect(receivers.end_trust_on_password_change, dispatch_uid="risk.password_changed")
