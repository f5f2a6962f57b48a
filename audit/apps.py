from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    """After `migrate`, give the staff roles the permissions of models added since (idempotent)."""
    from django.apps import apps as global_apps

    # post_migrate fires once per app with models, in order; the last one's comes after every
    # app's permissions exist.
    with_models = [config for config in global_apps.get_app_configs() if config.models_module is not None]
    if not with_models or sender.label != with_models[-1].label:
        return
    from audit.roles import sync_roles

    sync_roles(apps=kwargs.get("apps"))


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="audit.sync_roles")
        from audit.metrics import chain_gauges
        from core.metrics import register_reader

        register_reader("audit_chain", chain_gauges)
