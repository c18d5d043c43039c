"""The online store the settings name, opened only once it has answered."""

from __future__ import annotations

import sqlite3

from feature_store import OnlineStore, StoreError, open_store
from feature_store.factory import DEFAULT_URL
from feature_store.multiplexed import without_password
from training.settings import TrainingSettings


class StoreSetupError(StoreError):
    """The configured online store cannot be used: a URL of no known kind, no answer, or a refusal (a
    database number out of range, a wrong password, a file that cannot be created)."""


def open_checked_store(settings: TrainingSettings) -> OnlineStore:
    """The store of ``RECSYS_STORE_URL``, after one read: a typo in the URL or a store that refuses is
    then reported before any work, not after hours of training."""
    import redis

    url = settings.store_url or DEFAULT_URL
    try:
        store = open_store(url, prefix=settings.store_prefix, retain=settings.snapshots_retained)
    except (ValueError, OSError, sqlite3.Error) as exc:
        raise StoreSetupError(f"RECSYS_STORE_URL: {exc}") from exc
    try:
        store.current_snapshot_id()
    except (ValueError, OSError, sqlite3.Error, redis.RedisError) as exc:
        store.close()
        raise StoreSetupError(f"online store {without_password(url)} (RECSYS_STORE_URL) cannot be used: {exc}") from exc
    return store


def check_store(settings: TrainingSettings) -> None:
    """Raise :class:`StoreSetupError` unless the configured store answers."""
    open_checked_store(settings).close()

