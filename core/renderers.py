"""DRF's JSON renderer on orjson: the same bytes, several times faster on every API answer.

Types orjson does not know natively (Decimal, lazy strings, ...) and datetimes go through DRF's
own encoder, so every value renders exactly as DRF's JSONRenderer renders it (compact, UTF-8,
"Z" for UTC, U+2028/U+2029 escaped). Anything orjson refuses (an integer beyond 64 bits, say)
is rendered by DRF's renderer itself. A client asking for indented JSON gets DRF's renderer too.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
_default = JSONEncoder().default


class ORJSONRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)  # type: ignore[no-any-return]
        try:
            out = orjson.dumps(data, default=_default, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            return super().render(data, accepted_media_type, renderer_context)  # type: ignore[no-any-return]
        if b"\xe2\x80\xa8" in out or b"\xe2\x80\xa9" in out:
            out = out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return out
