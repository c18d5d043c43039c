"""Reading an event log of the limits store (offer decisions, offer events, experiment exposures) whole."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pandas as pd

from feature_store import open_limits
from feature_store.base import StoreError
from feature_store.factory import store_backend
from feature_store.keys import validate_name
from feature_store.limits import default_limits_url


def service_limits_store(limits_url: str | None, prefix: str | None) -> tuple[str, str]:
    """The limits store the web service uses when these are not given: its ``RECSYS_SERVING_LIMITS_URL``,
    else its snapshot store when that is Redis, else the embedded file; its ``RECSYS_SERVING_LIMITS_PREFIX``,
    else its store prefix, else ``recsys``."""
    env = os.environ
    url = limits_url or env.get("RECSYS_SERVING_LIMITS_URL") or default_limits_url(env.get("RECSYS_SERVING_STORE_URL"))
    prefix = prefix or env.get("RECSYS_SERVING_LIMITS_PREFIX") or env.get("RECSYS_SERVING_STORE_PREFIX") or "recsys"
    return url, prefix


def read_event_log(limits_url: str, prefix: str, stream: str, page_size: int = 10_000) -> pd.DataFrame:
    """Every retained event of ``stream``, oldest first: one row per event with its ``event_id`` and
    fields (text), read a page at a time."""
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, got {page_size}")
    url = limits_url
    try:
        kind, target = store_backend(url)
        validate_name("prefix", prefix)
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

    try:
        rows = asyncio.run(read())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"limits store {url}: {exc}") from None
    return pd.DataFrame(rows, dtype="string")
