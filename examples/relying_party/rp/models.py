"""What the relying party remembers beside Django's sessions."""

from __future__ import annotations

from django.db import models


class SignIn(models.Model):
    """One local session opened by a sign-in at the provider: what a logout token can point at."""

    session_key = models.CharField(max_length=40, unique=True)
    issuer = models.CharField(max_length=255)
    # The provider's session (the ID token's sid) and user (sub) this local session belongs to.
    sid = models.CharField(max_length=255, db_index=True)
    sub = models.CharField(max_length=255, db_index=True)
    signed_in_at = models.DateTimeField()
    # Set when a back-channel logout ended the session: the browser that comes back with the old
    # cookie is told why it is signed out. Rows are purged a day later.
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.sub} ({self.sid})"


class SeenLogoutToken(models.Model):
    """jti of every logout token accepted, kept until the token could no longer be accepted anyway."""

    issuer = models.CharField(max_length=255)
    jti = models.CharField(max_length=255)
    remember_until = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="rp_logout_token_once")]

    def __str__(self) -> str:
        return self.jti
