from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that changed a user's password (change or reset): user=<User>.
password_changed = Signal()

# Sent inside the transaction that ended a login (accounts.services.session_end), after the
# row is marked ended and its sid revoked: user_session=<UserSession>, reason=<str>. The
# identity provider revokes the login's tokens and queues back-channel logouts on it.
session_ended = Signal()
