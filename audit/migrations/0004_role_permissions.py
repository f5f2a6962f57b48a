"""Gives the roles (groups created by accounts/0002_roles) their permissions; see audit/roles.py."""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from audit.roles import sync_roles

    # Permissions are normally created after all migrations (post_migrate); create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True  # type: ignore[assignment]
        create_permissions(app_config, apps=apps, verbosity=0)  # type: ignore[arg-type]
        app_config.models_module = None
    sync_roles(apps=apps)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=["customer", "support", "security", "admin"]):
        group.permissions.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_checkpoints"),
        ("accounts", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
