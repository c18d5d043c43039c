"""Timestamps for the decision and exposure logs, written on the request path."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache


def now_iso() -> str:
    """The time as ``datetime.isoformat(timespec="milliseconds")`` writes it for UTC."""
    now = time.time()
    second = int(now)
    return f"{_iso_second(second)}.{int((now - second) * 1000):03d}+00:00"


@lru_cache(maxsize=1)
def _iso_second(second: int) -> str:
    # Every decision and exposure is stamped: format each whole second once.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
