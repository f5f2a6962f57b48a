"""Puts the client's country on the request context and hands out the device cookie."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core import context
from core.net import client_ip


class RiskMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from risk.devices import attach_device_cookie
        from risk.geo import locate

        # An in-memory lookup of a few microseconds: every audit row of the request carries the country.
        place = locate(client_ip(request))
        context.update(country=place.country)
        request.risk_place = place  # type: ignore[attr-defined]
        response = self.get_response(request)
        attach_device_cookie(request, response)
        return response
