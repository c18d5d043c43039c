"""Which snapshot a worker serves: the current pointer, re-read at most every few hundred ms, and
the per-snapshot catalogue, decoded once. A request pins one :class:`SnapshotView` for all its reads."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from feature_store import AsyncOnlineStoreReader, Manifest, StoreUnavailableError
from recsys.records import CATALOG_KEY, META, POPULAR, POPULAR_LISTS, Catalog, decode_ranked

log = logging.getLogger("recsys.serving")


class NoSnapshotError(RuntimeError):
    """Nothing has been published yet (or the store is unreachable)."""


@dataclass(frozen=True)
class SnapshotView:
    manifest: Manifest
    catalog: Catalog
    item_index: dict[str, int]
    sources: list[str]
    #: popular and trending lists, held in memory: they answer unknown customers and fill short lists
    #: without a store read, and keep answering while the store is unreachable
    popular: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id

    @cached_property
    def model(self) -> dict:
        # Part of every answer; read-only once built.
        return dict(self.manifest.metadata.get("model", {}))


class SnapshotCache:
    def __init__(self, reader: AsyncOnlineStoreReader, refresh_seconds: float) -> None:
        self.reader = reader
        self.refresh_seconds = refresh_seconds
        self._current: SnapshotView | None = None
        self._checked_at = float("-inf")
        self._views: dict[str, SnapshotView] = {}
        self._lock = asyncio.Lock()

    async def current(self) -> SnapshotView:
        if self._current is not None and time.monotonic() - self._checked_at < self.refresh_seconds:
            return self._current
        async with self._lock:
            if self._current is None or time.monotonic() - self._checked_at >= self.refresh_seconds:
                await self._refresh()
        if self._current is None:
            raise NoSnapshotError("no snapshot has been published; run `recsys publish` or `recsys train`")
        return self._current

    async def _refresh(self) -> None:
        try:
            snapshot_id = await self.reader.current_snapshot_id()
        except StoreUnavailableError as exc:
            # Keep serving the snapshot we know rather than failing every request; retry after the interval.
            self._checked_at = time.monotonic()
            if self._current is None:
                raise NoSnapshotError(f"the snapshot store is unreachable: {exc}") from exc
            log.warning("snapshot store unreachable, still serving %s: %s", self._current.snapshot_id, exc)
            return
        self._checked_at = time.monotonic()
        if snapshot_id is None:
            self._current = None
            return
        view = self._views.get(snapshot_id)
        if view is None:
            view = await self._load(snapshot_id)
            # Old snapshots are immutable; keep only a couple so memory stays flat over many publishes.
            self._views = {k: v for k, v in list(self._views.items())[-2:]}
            self._views[snapshot_id] = view
        self._current = view

    async def _load(self, snapshot_id: str) -> SnapshotView:
        manifest = await self.reader.get_manifest(snapshot_id)
        raw_catalog = await self.reader.get(snapshot_id, META, CATALOG_KEY)
        if manifest is None or raw_catalog is None:
            raise NoSnapshotError(f"snapshot {snapshot_id} is current but incomplete in the store")
        catalog = Catalog.from_bytes(raw_catalog)
        lists = await self.reader.get_many(snapshot_id, POPULAR, list(POPULAR_LISTS))
        popular = {name: decode_ranked(raw) for name, raw in zip(POPULAR_LISTS, lists, strict=True) if raw is not None}
        return SnapshotView(manifest, catalog, {item: row for row, item in enumerate(catalog.item_ids)},
                            list(manifest.metadata.get("sources", [])), popular)
