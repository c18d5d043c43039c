"""The online store contract: versioned snapshots of opaque bytes, made current in one atomic step.

A snapshot is a set of namespaces (``"rec"``, ``"similar"``, ...), each a map from string key to bytes.
Writers fill a new snapshot through a :class:`SnapshotWriter`; nothing of it is visible to readers
until :meth:`SnapshotWriter.commit` switches the *current* pointer in one atomic step. Readers resolve
the current snapshot id once and read every key of a response under that id, so a response never mixes
two snapshots. The store knows nothing about models: values are bytes, metadata is a JSON object.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feature_store.keys import validate_name


class StoreError(RuntimeError):
    """Base class of the online store's errors."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The backend did not answer (connection refused or lost, timeout): callers may degrade gracefully."""


class SnapshotNotFoundError(StoreError):
    """The named snapshot does not exist (never committed, or expired)."""


class NoPreviousSnapshotError(StoreError):
    """A rollback was asked for but no older committed snapshot is retained."""


class SnapshotStateError(StoreError):
    """A writer was used after commit or abort."""


@dataclass(frozen=True)
class Manifest:
    """What a committed snapshot is: its id, when it was made, per-namespace key counts and metadata.

    ``metadata`` is free JSON written by the publisher (model name, version, run id, ...).
    ``layout`` is private to the store implementation (e.g. how many hash buckets it used).
    """

    snapshot_id: str
    created_at: str
    counts: dict[str, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "created_at": self.created_at,
            "counts": dict(self.counts),
            "metadata": dict(self.metadata),
            "layout": dict(self.layout),
        }

    @classmethod
    def made_now(cls, snapshot_id: str, counts: dict[str, int], metadata: Mapping[str, Any] | None,
                 layout: dict[str, Any]) -> tuple[Manifest, float]:
        """The manifest of a snapshot committed now, and now as a POSIX timestamp (for ordering)."""
        now = datetime.now(UTC)
        manifest = cls(snapshot_id=snapshot_id, created_at=now.isoformat(), counts=counts,
                       metadata=dict(metadata or {}), layout=layout)
        return manifest, now.timestamp()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(
            snapshot_id=str(data["snapshot_id"]),
            created_at=str(data["created_at"]),
            counts={str(k): int(v) for k, v in dict(data.get("counts", {})).items()},
            metadata=dict(data.get("metadata", {})),
            layout=dict(data.get("layout", {})),
        )


class SnapshotWriter(abc.ABC):
    """Fills one new snapshot. Use as a context manager: an exception inside aborts it."""

    snapshot_id: str

    @abc.abstractmethod
    def write(self, namespace: str, keys: Sequence[str], values: Sequence[bytes]) -> None:
        """Store ``values[i]`` under ``keys[i]``; may be called many times per namespace."""

    @abc.abstractmethod
    def commit(self, metadata: Mapping[str, Any] | None = None) -> Manifest:
        """Make this snapshot current in one atomic step, then apply the retention policy."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written; the current snapshot is untouched."""

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


class OnlineStore(abc.ABC):
    """Synchronous store used by publishers, the CLI and tests."""

    @abc.abstractmethod
    def begin_snapshot(self, snapshot_id: str | None = None) -> SnapshotWriter:
        """Start a new snapshot; ``snapshot_id`` defaults to a new sortable unique id."""

    @abc.abstractmethod
    def current_snapshot_id(self) -> str | None: ...

    @abc.abstractmethod
    def get_manifest(self, snapshot_id: str) -> Manifest | None: ...

    def current_manifest(self) -> Manifest | None:
        snapshot_id = self.current_snapshot_id()
        return None if snapshot_id is None else self.get_manifest(snapshot_id)

    @abc.abstractmethod
    def list_snapshots(self) -> list[Manifest]:
        """Committed snapshots still retained, newest first."""

    @abc.abstractmethod
    def set_current(self, snapshot_id: str) -> Manifest:
        """Point readers at an existing committed snapshot (raises SnapshotNotFoundError)."""

    def rollback(self) -> Manifest:
        """Make the newest retained snapshot older than the current one current."""
        current = self.current_snapshot_id()
        snapshots = self.list_snapshots()
        ids = [m.snapshot_id for m in snapshots]
        if current not in ids:
            raise NoPreviousSnapshotError("no current snapshot to roll back from")
        older = snapshots[ids.index(current) + 1 :]
        if not older:
            raise NoPreviousSnapshotError(f"no snapshot older than {current} is retained")
        return self.set_current(older[0].snapshot_id)

    @abc.abstractmethod
    def get(self, snapshot_id: str, namespace: str, key: str) -> bytes | None: ...

    @abc.abstractmethod
    def get_many(self, snapshot_id: str, namespace: str, keys: Sequence[str]) -> list[bytes | None]: ...

    @abc.abstractmethod
    def iter_namespace(
        self, snapshot_id: str, namespace: str, batch_size: int = 10_000
    ) -> Iterator[list[tuple[str, bytes]]]:
        """Every (key, value) of a namespace, in batches, in no particular order."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the backend answers."""

    @abc.abstractmethod
    def close(self) -> None: ...


class AsyncOnlineStoreReader(abc.ABC):
    """Read side used by the web service; never writes."""

    @abc.abstractmethod
    async def current_snapshot_id(self) -> str | None: ...

    @abc.abstractmethod
    async def get_manifest(self, snapshot_id: str) -> Manifest | None: ...

    @abc.abstractmethod
    async def get(self, snapshot_id: str, namespace: str, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def get_many(self, snapshot_id: str, namespace: str, keys: Sequence[str]) -> list[bytes | None]: ...

    async def get_each(self, snapshot_id: str, lookups: Sequence[tuple[str, str]]) -> list[bytes | None]:
        """One value per ``(namespace, key)``, read together (one round trip where the backend allows)."""
        return [await self.get(snapshot_id, namespace, key) for namespace, key in lookups]

    @abc.abstractmethod
    def iter_namespace(self, snapshot_id: str, namespace: str, batch_size: int = 10_000):
        """Async iterator of batches of (key, value), as :meth:`OnlineStore.iter_namespace`."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


def check_batch(namespace: str, keys: Sequence[str], values: Sequence[bytes]) -> None:
    """Reject a malformed :meth:`SnapshotWriter.write` call before any of it is stored."""
    validate_name("namespace", namespace)
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys but {len(values)} values for namespace {namespace!r}")
    if not set(map(type, values)) <= {bytes}:
        raise TypeError(f"values of namespace {namespace!r} must be bytes")
    if not set(map(type, keys)) <= {str}:
        raise TypeError(f"keys of namespace {namespace!r} must be str")


class ManifestCache:
    """Committed manifests never change, so a reader fetches each one once per snapshot id."""

    def __init__(self, size: int = 64) -> None:
        self._items: dict[str, Manifest] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, snapshot_id: str) -> Manifest | None:
        return self._items.get(snapshot_id)

    def put(self, manifest: Manifest) -> None:
        with self._lock:
            self._items[manifest.snapshot_id] = manifest
            while len(self._items) > self._size:
                del self._items[next(iter(self._items))]
