from __future__ import annotations

from django.apps import AppConfig


class IdpConfig(AppConfig):
    name = "idp"
    verbose_name = "Identity provider (OAuth 2.1 / OpenID Connect)"

    def ready(self) -> None:
        from idp import (
            clientcache,  # noqa: F401 (connects the client cache's invalidation)
            receivers,  # noqa: F401 (connects the session_ended receiver)
            services,
        )

        services.register_outbox_builders()
