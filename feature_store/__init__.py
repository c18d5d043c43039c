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
)
from feature_store.factory import open_async_reader, open_store

__all__ = [
    "AsyncOnlineStoreReader",
    "Manifest",
    "NoPreviousSnapshotError",
    "OnlineStore",
    "SnapshotNotFoundError",
    "SnapshotStateError",
    "SnapshotWriter",
    "StoreError",
    "open_async_reader",
    "open_store",
]
