"""Online store: versioned snapshots of bytes, written by training, read by serving."""

from feature_store.base import (
    AsyncOnlineStoreReader,
    Manifest,
    NoPreviousSnapshotError,
    OnlineStore,
    SnapshotNotFoundError,
    SnapshotStateError,
    SnapshotWriter,
    StoreError,
    StoreUnavailableError,
)
from feature_store.factory import open_async_reader, open_store
from feature_store.limits import Acquired, Claim, Event, Increment, LimitsStore, Recording, open_limits

__all__ = [
    "Acquired",
    "Claim",
    "Event",
    "Increment",
    "LimitsStore",
    "Recording",
    "open_limits",
    "AsyncOnlineStoreReader",
    "Manifest",
    "NoPreviousSnapshotError",
    "OnlineStore",
    "SnapshotNotFoundError",
    "SnapshotStateError",
    "SnapshotWriter",
    "StoreError",
    "StoreUnavailableError",
    "open_async_reader",
    "open_store",
]
