"""Mobile JSON API of accounts: JWT login, MFA step, refresh rotation, logout, me, sessions."""
