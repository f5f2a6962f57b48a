"""What happens once the password is right: a second step when one is needed, else the session.

Kept apart from the views so that the second-factor step (mfa) and the risk engine can
plug in here without touching the login page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from accounts import services
from accounts.models import User


def password_verified(request: HttpRequest, *, user: User, next_url: str) -> HttpResponse:
    services.session_start(request=request, user=user, amr=["pwd"])
    return HttpResponseRedirect(next_url)
