from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that changed a user's password (change or reset): user=<User>.
password_changed = Signal()

# Sent inside the transaction that ended a login (accounts.services.session_end), after the
# row is marked ended and its sid revoked: user_session=<UserSession>, reason=<str>. The
# identity provider revokes the login's tokens and queues back-channel logouts on it.
session_ended = Signal()

# Sent when a user row changed without save() (accounts.usercache.user_changed): user=<User>.
# Apps that cache what depends on the user (mfa's factor summary) forget it.
user_row_changed = Signal()
