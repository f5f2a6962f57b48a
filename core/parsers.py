from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.http import InvalidJSON, json_loads


class SafeJSONParser(JSONParser):
    """DRF's JSON parser on core.http.json_loads: pathological nesting is a 400, not a RecursionError."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(stream.read(), encoding=encoding)
        except InvalidJSON as exc:
            raise ParseError(exc.message) from exc
