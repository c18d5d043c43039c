"""Which snapshot a worker serves: the current pointer, re-read at most every few hundred ms, and
the per-snapshot catalogue, decoded once. A request pins one :class:`SnapshotView` for all its reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from feature_store import AsyncOnlineStoreReader, Manifest, StoreUnavailableError
from recsys.records import (
    CATALOG_KEY,
    META,
    POPULAR,
    POPULAR_LISTS,
    READABLE_RECORD_FORMATS,
    Catalog,
    decode_ranked,
    record_format_of,
)

log = logging.getLogger("recsys.serving")


class NoSnapshotError(RuntimeError):
    """Nothing has been published yet (or the store is unreachable)."""


class SnapshotStoreUnreachableError(NoSnapshotError):
    """No snapshot is held because the store cannot be reached: worth a retry soon."""


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

    @property
    def record_format(self) -> int:
        """The layout of this snapshot's customer records (see :data:`recsys.records.RECORD_FORMAT`)."""
        return record_format_of(self.manifest.metadata)

    @cached_property
    def model(self) -> dict:
        # Part of every answer; read-only once built.
        return dict(self.manifest.metadata.get("model", {}))


class SnapshotCache:
    """The current view, its pointer re-read every ``refresh_seconds``.

    Only the first load holds requests until it is done. Later re-reads run in a task of their own:
    a request that finds the pointer due starts one, and requests wait for it until
    ``refresh_wait_seconds`` after it started (so a publish is seen at once while the store answers),
    then answer from the view they have. While the store is failing, requests do not wait at all: a
    store that hangs costs a few requests a fraction of a second, not every request its timeout. A
    snapshot that fails to load leaves the current one serving.
    """

    def __init__(self, reader: AsyncOnlineStoreReader, refresh_seconds: float,
                 refresh_wait_seconds: float = 0.25) -> None:
        self.reader = reader
        self.refresh_seconds = refresh_seconds
        self.refresh_wait_seconds = refresh_wait_seconds
        self._current: SnapshotView | None = None
        self._checked_at = float("-inf")
        self._views: dict[str, SnapshotView] = {}
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task | None = None
        self._refresh_started = float("-inf")
        self._store_failing = False

    async def current(self) -> SnapshotView:
        if self._current is not None and time.monotonic() - self._checked_at < self.refresh_seconds:
            return self._current
        if self._current is None:
            async with self._lock:
                if self._current is None or time.monotonic() - self._checked_at >= self.refresh_seconds:
                    await self._refresh()
        else:
            await self._refresh_in_background()
        if self._current is None:
            raise NoSnapshotError("no snapshot has been published; run `recsys publish` or `recsys train`")
        return self._current

    async def _refresh_in_background(self) -> None:
        task = self._refreshing
        if task is None:
            task = self._refreshing = asyncio.create_task(self._refresh_logged())
            self._refresh_started = time.monotonic()
        wait = self._refresh_started + self.refresh_wait_seconds - time.monotonic()
        if not self._store_failing and wait > 0:
            # shielded: a request that stops waiting must not cancel the re-read for everyone else
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), wait)

    async def _refresh_logged(self) -> None:
        try:
            await self._refresh()
        except Exception:  # a background task's error would otherwise go unseen
            log.exception("re-reading the current snapshot failed; still serving %s",
                          self._current.snapshot_id if self._current else None)
            self._checked_at = time.monotonic()
        finally:
            self._refreshing = None

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    async def _refresh(self) -> None:
        try:
            snapshot_id = await self.reader.current_snapshot_id()
            view = None if snapshot_id is None else self._views.get(snapshot_id)
            if snapshot_id is not None and view is None:
                view = await self._load(snapshot_id)
        except (StoreUnavailableError, NoSnapshotError) as exc:
            # Keep serving the snapshot we know rather than failing every request; retry after the interval.
            self._checked_at = time.monotonic()
            self._store_failing = isinstance(exc, StoreUnavailableError)
            if self._current is None:
                if isinstance(exc, NoSnapshotError):
                    raise
                raise SnapshotStoreUnreachableError(f"the snapshot store is unreachable: {exc}") from exc
            log.warning("cannot read the current snapshot, still serving %s: %s", self._current.snapshot_id, exc)
            return
        self._checked_at = time.monotonic()
        self._store_failing = False
        if snapshot_id is None:
            self._current = None
            return
        if snapshot_id not in self._views:
            # Old snapshots are immutable; keep only a couple so memory stays flat over many publishes.
            self._views = {k: v for k, v in list(self._views.items())[-2:]}
            self._views[snapshot_id] = view
        self._current = view

    async def _load(self, snapshot_id: str) -> SnapshotView:
        manifest = await self.reader.get_manifest(snapshot_id)
        raw_catalog = None if manifest is None else await self.reader.get(snapshot_id, META, CATALOG_KEY)
        if manifest is None or raw_catalog is None:
            raise NoSnapshotError(f"snapshot {snapshot_id} is current but incomplete in the store")
        record_format = record_format_of(manifest.metadata)
        if record_format not in READABLE_RECORD_FORMATS:
            # published by a later release: this server would misread every customer record, so it keeps
            # the snapshot it has
            raise NoSnapshotError(
                f"snapshot {snapshot_id} holds customer records of format {record_format}; this server reads "
                f"formats {', '.join(map(str, READABLE_RECORD_FORMATS))}: upgrade the servers before the publisher")
        catalog = Catalog.from_bytes(raw_catalog)
        lists = await self.reader.get_many(snapshot_id, POPULAR, list(POPULAR_LISTS))
        popular = {name: decode_ranked(raw) for name, raw in zip(POPULAR_LISTS, lists, strict=True) if raw is not None}
        return SnapshotView(manifest, catalog, {item: row for row, item in enumerate(catalog.item_ids)},
                            list(manifest.metadata.get("sources", [])), popular)
