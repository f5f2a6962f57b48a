"""The plain DRF + simplejwt app that issue 15 measures bank-portal against (bench/plain_app.py runs it).

What a team would write with the stock libraries and nothing of ours: Django's default middleware,
DRF with simplejwt (RS256, 15-minute access tokens, rotating refresh tokens with simplejwt's
blacklist app), argon2id with the same parameters as the portal, and stock django-oauth-toolkit for
client-credentials tokens. Only the bench starts it, on 127.0.0.1, in its own database.
"""
