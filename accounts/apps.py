from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customers and sign-in"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from accounts import (
            checks,  # noqa: F401 (registers the system checks)
            usercache,  # noqa: F401 (connects the user cache's invalidation)
        )
        from accounts.services import last_login_stamp

        # django.contrib.auth's update_last_login saves the user (the whole save machinery and its
        # signals, which nothing here reads for last_login): the same column, one plain UPDATE.
        user_logged_in.disconnect(dispatch_uid="update_last_login")
        user_logged_in.connect(last_login_stamp, dispatch_uid="accounts-last-login")
