"""Hears about ended logins without accounts importing idp (accounts.signals.session_ended)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from accounts.models import UserSession
from accounts.signals import session_ended
from idp import services

logger = logging.getLogger(__name__)


@receiver(session_ended, dispatch_uid="idp.login_ended")
def on_session_ended(sender: Any, user_session: UserSession, reason: str, **kwargs: Any) -> None:
    if user_session.kind != UserSession.Kind.WEB:
        return
    try:
        # A savepoint: should this fail, the login still ends (its sid is already revoked, so
        # every provider token of it is refused anyway) and the failure is logged. login_ended
        # asks one query first: most web logins never signed in to a client, and then nothing
        # more runs (a token exchange racing it is refused: the sid is already revoked).
        with transaction.atomic():
            services.login_ended(user_session=user_session, reason=reason)
    except Exception:
        logger.exception("provider tokens or back-channel logouts of login %s not handled", user_session.id)
