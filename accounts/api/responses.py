"""Response shapes the authentication endpoints share (the mobile login and its second step)."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response


def tokens_response(pair: Any, **extra: Any) -> Response:
    """A token pair, never cached (RFC 6749 §5.1)."""
    response = Response({**pair.as_response(), **extra}, status=status.HTTP_200_OK)
    response["Cache-Control"] = "no-store"
    return response


def login_response(login: Any) -> Response:
    """A finished login (accounts.pipeline.Login) of the API: its tokens, and what it must do next."""
    gates = list(getattr(login.attempt, "gates", []) or [])
    extra = {"password_change_required": True} if "password_change_required" in gates else {}
    return tokens_response(login.tokens, **extra)
