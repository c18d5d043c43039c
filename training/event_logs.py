"""Reading an event log of the limits store (offer decisions, offer events, experiment exposures) whole."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd

from feature_store import open_limits
from feature_store.base import StoreError
from feature_store.factory import store_backend
from feature_store.limits import DEFAULT_LIMITS_URL


def read_event_log(limits_url: str | None, prefix: str, stream: str, page_size: int = 10_000) -> pd.DataFrame:
    """Every retained event of ``stream``, oldest first: one row per event with its ``event_id`` and
    fields (text), read a page at a time."""
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    url = limits_url or DEFAULT_LIMITS_URL
    try:
        kind, target = store_backend(url)
    except ValueError as exc:
        raise StoreError(f"limits store: {exc}") from None
    if kind == "sqlite" and not Path(target).exists():
        # opening would create an empty store and report an empty log
        raise FileNotFoundError(f"no limits store at {Path(target).resolve()} (URL {url}); "
                                "give the service's RECSYS_SERVING_LIMITS_URL")

    async def read() -> list[dict[str, str]]:
        store = open_limits(limits_url, prefix=prefix)
        rows: list[dict[str, str]] = []
        after = None
        try:
            while page := await store.read_events(stream, count=page_size, after=after):
                rows.extend({"event_id": event_id, **fields} for event_id, fields in page)
                after = page[-1][0]
        finally:
            await store.close()
        return rows

    return pd.DataFrame(asyncio.run(read()), dtype="string")
