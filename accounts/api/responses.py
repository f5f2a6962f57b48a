"""Response shapes the authentication endpoints share (the mobile login and its second step)."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response


def tokens_response(pair: Any) -> Response:
    """A token pair, never cached (RFC 6749 §5.1)."""
    response = Response(pair.as_response(), status=status.HTTP_200_OK)
    response["Cache-Control"] = "no-store"
    return response
