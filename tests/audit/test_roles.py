"""The four roles and their permissions (audit/roles.py, applied by migration and after migrate)."""

from __future__ import annotations

from django.contrib.auth.models import Group

from audit.roles import sync_roles


def _perms(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_roles_exist_with_their_permissions() -> None:
    customer, support, security, admin = (_perms(n) for n in ("customer", "support", "security", "admin"))
    assert customer == set()

    assert {"accounts.view_user", "accounts.view_usersession"} <= support
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in support)
    assert "audit.view_reports" not in support and "audit.view_personal_data" not in support

    assert {"audit.view_reports", "audit.view_auditevent", "audit.view_personal_data", "accounts.view_user"} <= security
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in security)
    assert "audit.manage_user_accounts" not in security

    assert {"audit.view_reports", "audit.manage_user_accounts", "accounts.change_user", "accounts.add_user"} <= admin
    assert not {"audit.change_auditevent", "audit.delete_auditevent", "audit.add_auditevent"} & admin
    assert not {"audit.change_auditcheckpoint", "audit.delete_auditcheckpoint"} & admin


def test_sync_is_idempotent_and_repairs_drift() -> None:
    support = Group.objects.get(name="support")
    before = _perms("support")
    support.permissions.clear()
    sync_roles()
    sync_roles()
    assert _perms("support") == before
