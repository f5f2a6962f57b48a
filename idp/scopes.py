"""Which scopes a client may ask for: its registered `allowed_scopes`, within the provider's list."""

from __future__ import annotations

from typing import Any

from oauth2_provider.scopes import SettingsScopes


class ClientScopes(SettingsScopes):
    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        every = super().get_available_scopes(application, request, *args, **kwargs)
        if application is None:
            return list(every)
        allowed = set(application.allowed_scopes.split())
        return [scope for scope in every if scope in allowed]

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        if application is not None and application.authorization_grant_type == "client-credentials":
            # A service asking for nothing gets what it is registered for.
            return self.get_available_scopes(application, request)
        return list(super().get_default_scopes(application, request, *args, **kwargs))
