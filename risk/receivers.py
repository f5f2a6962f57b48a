from __future__ import annotations

from typing import Any


def end_trust_on_password_change(sender: Any, user: Any, **kwargs: Any) -> None:
    from risk.services import device_trust_end_all

    device_trust_end_all(user=user, reason="password_changed")
