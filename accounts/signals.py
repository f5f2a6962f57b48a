from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that changed a user's password (change or reset): user=<User>.
password_changed = Signal()
