"""Hears about ended logins without accounts importing idp (accounts.signals.session_ended)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from accounts.models import UserSession
from accounts.signals import session_ended
from idp import services


@receiver(session_ended, dispatch_uid="idp.login_ended")
def on_session_ended(sender: Any, user_session: UserSession, reason: str, **kwargs: Any) -> None:
    if user_session.kind == UserSession.Kind.WEB:
        services.login_ended(user_session=user_session, reason=reason)
