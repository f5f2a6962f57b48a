from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class StrongFactorAdminConfig(AdminConfig):
    """Django's admin, served by a site that requires a verified TOTP or passkey (see mfa.admin_site)."""

    default_site = "mfa.admin_site.StrongFactorAdminSite"
