"""Roles are groups; this module is the single source of their permissions.

`sync_roles()` sets each group's permissions from the rules below. It runs from the data
migration audit/0004 and again after every `migrate` (post_migrate), so models that other
apps add later get their view permissions for the staff roles without a new migration here.

- customer: no model permissions; customer pages check ownership of every object.
- support: read-only on customers (users, their sessions and devices); personal data masked
  in the admin (no audit.view_personal_data).
- security: the reports and the audit log, and read-only on everything else.
- admin: everything, including the audited staff actions, except changing the audit log.

Staff roles also need `is_staff` to reach the admin (and the admin requires a strong second factor).
"""

from __future__ import annotations

from typing import Any

ROLES = ("customer", "support", "security", "admin")

VIEW_REPORTS = "audit.view_reports"
MANAGE_USER_ACCOUNTS = "audit.manage_user_accounts"
VIEW_PERSONAL_DATA = "audit.view_personal_data"

# (app_label, codename) pairs granted to support; missing ones (an app not installed yet) are skipped.
SUPPORT_PERMISSIONS = (
    ("accounts", "view_user"),
    ("accounts", "view_usersession"),
    ("risk", "view_knowndevice"),
    ("risk", "view_loginalert"),
)
_AUDIT_CUSTOM = ("view_reports", "manage_user_accounts", "view_personal_data")
# Nobody, not even the admin role, may change the audit log through Django.
_AUDIT_READ_ONLY_MODELS = ("auditevent", "auditcheckpoint", "chainverification")


def role_permission_ids(*, apps: Any) -> dict[str, set[int]]:
    Permission = apps.get_model("auth", "Permission")
    rows = list(Permission.objects.values_list("id", "content_type__app_label", "content_type__model", "codename"))
    support_wanted = set(SUPPORT_PERMISSIONS)
    result: dict[str, set[int]] = {name: set() for name in ROLES}
    for pk, app_label, model, codename in rows:
        action = codename.split("_", 1)[0]
        is_audit_model = app_label == "audit" and model in _AUDIT_READ_ONLY_MODELS
        if (app_label, codename) in support_wanted:
            result["support"].add(pk)
        if action == "view" or (app_label == "audit" and codename in ("view_reports", "view_personal_data")):
            result["security"].add(pk)
        if is_audit_model and action in ("add", "change", "delete"):
            continue
        result["admin"].add(pk)
    return result


def sync_roles(*, apps: Any = None) -> None:
    """Creates the four groups if missing and sets their permissions (idempotent)."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    Group = apps.get_model("auth", "Group")
    wanted = role_permission_ids(apps=apps)
    for name in ROLES:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(wanted[name])
