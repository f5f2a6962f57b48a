"""DRF throttles counted in the default cache (Redis), keyed by the client IP as the rest of
the portal sees it (core.net.client_ip, honouring TRUSTED_PROXY_COUNT)."""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from core.net import client_ip


class ScopedIPThrottle(ScopedRateThrottle):
    @property
    def THROTTLE_RATES(self) -> Any:  # type: ignore[override]
        """Read at each request, so settings overrides (tests, fuzzing) take effect."""
        return dict(api_settings.DEFAULT_THROTTLE_RATES)

    def get_ident(self, request: Any) -> str:
        return client_ip(getattr(request, "_request", request))
