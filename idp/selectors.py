from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.models import User
from idp.models import Client, Consent


@dataclass(frozen=True)
class ConnectedApp:
    client: Client
    scopes: list[tuple[str, str]]
    connected_at: datetime
    last_used_at: datetime | None


def connected_apps(*, user: User) -> list[ConnectedApp]:
    """The apps the user has let in (first-party ones included), most recently used first."""
    from idp.views import scope_descriptions

    rows = Consent.objects.filter(user=user).select_related("client").order_by("-last_used_at", "-created_at")
    return [
        ConnectedApp(
            client=row.client,
            scopes=scope_descriptions(row.scope.split()),
            connected_at=row.created_at,
            last_used_at=row.last_used_at,
        )
        for row in rows
    ]
