"""JSON responses serialised with orjson: the hot paths skip re-validating what the service built."""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.responses import Response


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def utf8_safe(value: Any) -> Any:
    """``value`` with every string that UTF-8 cannot encode (a lone surrogate, which JSON's \\ud800
    escapes can carry into a request) written with backslash escapes instead, so that echoing what a client
    sent can never fail."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity: a body holding one (1e400) must still get its 422
    if isinstance(value, dict):
        return {utf8_safe(k): utf8_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [utf8_safe(v) for v in value]
    return value
