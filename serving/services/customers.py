"""Customer profiles, segment definitions and segment members from a snapshot. No web framework here.

A segment's members are walked page by page (see :mod:`training.publish_customers` for the layout).
A cursor names the snapshot it was made on, the walk it belongs to and the next member's position, so
every page of one listing comes from the same snapshot, even after a newer one is published.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import orjson

from feature_store import AsyncOnlineStoreReader, Manifest, SnapshotNotFoundError
from recsys.records import (
    ALL_SEGMENTS,
    PROFILES,
    SEGMENT_INDEX_KEY,
    SEGMENT_MEMBERS,
    SEGMENTS,
    CustomerProfile,
    member_page_key,
    slugify,
)
from recsys.spreadsheet_cells import formula_safe
from serving.snapshots import SnapshotCache

PAGES_PER_READ = 8
MAX_PAGES_PER_REQUEST = 50


class UnknownCustomerError(LookupError):
    def __init__(self, customer_id: str, snapshot_id: str) -> None:
        super().__init__(f"customer {customer_id!r} has no profile in snapshot {snapshot_id}")


class UnknownSegmentError(LookupError):
    def __init__(self, segment: str, valid: list[str]) -> None:
        super().__init__(f"unknown segment {segment!r}; valid segments: {', '.join(map(repr, valid))} "
                         f"(or their slugs, or {ALL_SEGMENTS!r})")
        self.valid = valid


class NoCustomerDataError(LookupError):
    """The snapshot was published without customer intelligence."""


class InvalidCursorError(ValueError):
    """The cursor is not one this service made, or it belongs to another segment."""


class SnapshotGoneError(LookupError):
    """A cursor's snapshot has expired: the listing cannot go on without mixing snapshots."""


@dataclass(frozen=True)
class Filters:
    """Inclusive bounds; a customer whose value is unknown never matches a bound on that value."""

    min_churn: float | None = None
    max_churn: float | None = None
    min_clv: float | None = None
    max_clv: float | None = None

    def mask(self, page: dict) -> np.ndarray | None:
        """Rows of a page that pass, or None when no bound is set."""
        keep = None
        for column, low, high in (("churn_probability", self.min_churn, self.max_churn),
                                  ("clv", self.min_clv, self.max_clv)):
            if low is None and high is None:
                continue
            values = np.asarray(page[column], dtype=np.float64)
            ok = ~np.isnan(values)
            if low is not None:
                ok &= values >= low
            if high is not None:
                ok &= values <= high
            keep = ok if keep is None else keep & ok
        return keep


@dataclass(frozen=True)
class SegmentIndex:
    snapshot_id: str
    manifest: Manifest
    segments: list[dict]
    clusters: list[dict]
    columns: list[str]
    page_size: int
    profiles: int
    info: dict

    def resolve(self, segment: str) -> list[dict]:
        """The walk a path segment names: one segment by name or slug, or every segment for ``all``."""
        if segment == ALL_SEGMENTS:
            return self.segments
        for record in self.segments:
            if record["name"] == segment:
                return [record]
        wanted = slugify(segment)
        for record in self.segments:
            if record["slug"] == wanted:
                return [record]
        raise UnknownSegmentError(segment, [r["name"] for r in self.segments])

    def canonical(self, segment: str) -> str:
        walk = self.resolve(segment)
        return ALL_SEGMENTS if segment == ALL_SEGMENTS else walk[0]["name"]


@dataclass(frozen=True)
class Position:
    """The next member of a walk: segment ordinal in the walk, page of that segment, row in that page."""

    segment: int = 0
    page: int = 0
    row: int = 0

    def normalised(self, walk: list[dict]) -> Position | None:
        """The same member with page and row carried over; None past the walk's last member."""
        segment, page, row = self.segment, self.page, self.row
        while segment < len(walk):
            size, page_size = walk[segment]["size"], walk[segment]["page_size"]
            member = page * page_size + row
            if member < size:
                return Position(segment, *divmod(member, page_size))
            segment, page, row = segment + 1, 0, 0
        return None


def encode_cursor(snapshot_id: str, segment: str, position: Position) -> str:
    raw = orjson.dumps([snapshot_id, segment, position.segment, position.page, position.row])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, Position]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        snapshot_id, segment, *numbers = data
        if not (isinstance(snapshot_id, str) and isinstance(segment, str) and len(numbers) == 3
                and all(isinstance(n, int) and n >= 0 for n in numbers)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursorError("cursor is malformed: pass next_cursor of the previous page unchanged") from exc
    return snapshot_id, segment, Position(*numbers)


@dataclass(frozen=True)
class MemberPage:
    items: list[dict]
    next_cursor: str | None
    index: SegmentIndex
    segment: str


class CustomerService:
    def __init__(self, reader: AsyncOnlineStoreReader, snapshots: SnapshotCache) -> None:
        self.reader = reader
        self.snapshots = snapshots
        self._indexes: dict[str, SegmentIndex] = {}

    async def profile(self, customer_id: str) -> tuple[CustomerProfile, SegmentIndex]:
        view = await self.snapshots.current()
        index = await self.index(view.snapshot_id)
        raw = await self.reader.get(view.snapshot_id, PROFILES, customer_id)
        if raw is None:
            raise UnknownCustomerError(customer_id, view.snapshot_id)
        return CustomerProfile.from_bytes(raw), index

    async def current_index(self) -> SegmentIndex:
        return await self.index((await self.snapshots.current()).snapshot_id)

    async def index(self, snapshot_id: str, *, pinned: bool = False) -> SegmentIndex:
        """The segment index of a snapshot, read once per snapshot (snapshots never change)."""
        cached = self._indexes.get(snapshot_id)
        if cached is not None:
            return cached
        try:
            manifest = await self.reader.get_manifest(snapshot_id)
            raw = None if manifest is None else await self.reader.get(snapshot_id, SEGMENTS, SEGMENT_INDEX_KEY)
        except SnapshotNotFoundError:
            manifest = raw = None
        if manifest is None and pinned:
            raise SnapshotGoneError(_gone(snapshot_id))
        if raw is None:
            if pinned:
                raise SnapshotGoneError(_gone(snapshot_id))
            raise NoCustomerDataError(f"snapshot {snapshot_id} holds no customer intelligence; publish it "
                                      "with the customer part")
        data = orjson.loads(raw)
        index = SegmentIndex(snapshot_id, manifest, data["segments"], data["clusters"], data["columns"],
                             data["page_size"], data["profiles"], data.get("info", {}))
        self._indexes = {k: v for k, v in list(self._indexes.items())[-3:]}
        self._indexes[snapshot_id] = index
        return index

    async def open_walk(self, segment: str, cursor: str | None) -> tuple[SegmentIndex, str, list[dict], Position]:
        """Pin the snapshot (the cursor's, or the current one), resolve the segment and the start."""
        if cursor is None:
            index = await self.current_index()
            return index, index.canonical(segment), index.resolve(segment), Position()
        snapshot_id, cursor_segment, position = decode_cursor(cursor)
        index = await self.index(snapshot_id, pinned=True)
        if index.canonical(segment) != cursor_segment:
            raise InvalidCursorError(f"cursor belongs to segment {cursor_segment!r}, not {segment!r}")
        return index, cursor_segment, index.resolve(segment), position

    async def members(self, segment: str, limit: int, cursor: str | None, filters: Filters) -> MemberPage:
        index, name, walk, position = await self.open_walk(segment, cursor)
        items: list[dict] = []
        at = position.normalised(walk)
        scanned = 0
        while at is not None and len(items) < limit and scanned < MAX_PAGES_PER_REQUEST:
            record = walk[at.segment]
            page = (await self._pages(index.snapshot_id, record, [at.page]))[0]
            scanned += 1
            rows = range(at.row, len(page["customer_id"]))
            keep = filters.mask(page)
            taken = at.row
            for row in rows:
                taken = row + 1
                if keep is None or keep[row]:
                    items.append(_item(page, row, record["name"], index.columns))
                    if len(items) == limit:
                        break
            else:
                taken = len(page["customer_id"])
            at = Position(at.segment, at.page, taken).normalised(walk)
        next_cursor = None if at is None else encode_cursor(index.snapshot_id, name, at)
        return MemberPage(items, next_cursor, index, name)

    async def export_csv(self, index: SegmentIndex, walk: list[dict], filters: Filters) -> AsyncIterator[bytes]:
        """The header, then one chunk per few pages; the next pages are read while these are formatted."""
        yield _csv_chunk([index.columns])
        batches = [(record, pages) for record in walk
                   for pages in _chunks(range(record["pages"]), PAGES_PER_READ)]
        pending = asyncio.ensure_future(self._pages(index.snapshot_id, *batches[0])) if batches else None
        for i, (record, _) in enumerate(batches):
            pages = await pending
            pending = (asyncio.ensure_future(self._pages(index.snapshot_id, *batches[i + 1]))
                       if i + 1 < len(batches) else None)
            yield await asyncio.to_thread(_csv_rows, pages, record["name"], index.columns, filters)

    async def _pages(self, snapshot_id: str, record: dict, pages: list[int]) -> list[dict]:
        keys = [member_page_key(record['name'], page) for page in pages]
        try:
            raws = await self.reader.get_many(snapshot_id, SEGMENT_MEMBERS, keys)
        except SnapshotNotFoundError as exc:
            raise SnapshotGoneError(_gone(snapshot_id)) from exc
        if any(raw is None for raw in raws):
            # The segment record promises these pages: their absence means the snapshot was removed.
            raise SnapshotGoneError(_gone(snapshot_id))
        return [orjson.loads(raw) for raw in raws]


def _gone(snapshot_id: str) -> str:
    return (f"snapshot {snapshot_id} of this cursor has expired; start the listing again without a cursor "
            "to page through the current snapshot")


def _chunks(values: range, size: int) -> list[list[int]]:
    return [list(values[start:start + size]) for start in range(0, len(values), size)]


def _item(page: dict, row: int, segment: str, columns: list[str]) -> dict:
    item = {column: (segment if column == "segment" else page[column][row])
            for column in columns if not column.startswith("reason_")}
    reasons = []
    n_reasons = sum(1 for column in columns if column.endswith("_feature"))
    for i in range(1, n_reasons + 1):
        feature = page[f"reason_{i}_feature"][row]
        if feature is None:
            break
        reasons.append({"feature": feature, "value": page[f"reason_{i}_value"][row],
                        "contribution": page[f"reason_{i}_contribution"][row]})
    item["churn_reasons"] = reasons
    return item


def _csv_chunk(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _csv_rows(pages: list[dict], segment: str, columns: list[str], filters: Filters) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for page in pages:
        n = len(page["customer_id"])
        values = [formula_safe(page[c]) if c != "segment" else [segment] * n for c in columns]
        keep = filters.mask(page)
        if keep is not None:
            rows = np.flatnonzero(keep).tolist()
            values = [[column[r] for r in rows] for column in values]
        writer.writerows(zip(*values, strict=True))
    return buffer.getvalue().encode()


def profile_body(profile: CustomerProfile, index: SegmentIndex) -> dict:
    return {
        "customer_id": profile.customer_id,
        "segment": profile.segment,
        "rfm": {"recency_score": profile.recency_score, "frequency_score": profile.frequency_score,
                "monetary_score": profile.monetary_score, "recency_days": profile.recency_days,
                "frequency": profile.frequency, "monetary": profile.monetary},
        "cluster": None if profile.cluster is None else {"id": profile.cluster, "name": profile.cluster_name},
        "churn": {"probability": _finite(profile.churn_probability), "reasons": profile.churn_reasons},
        "p_alive": _finite(profile.p_alive),
        "expected_purchases": _finite(profile.expected_purchases),
        "clv": _finite(profile.clv),
        "country": profile.country,
        "snapshot_id": index.snapshot_id,
        "model": dict(index.manifest.metadata.get("model", {})),
        "intelligence": index.info,
    }


def segments_body(index: SegmentIndex) -> dict:
    return {"segments": [{k: v for k, v in record.items() if k not in ("pages", "page_size")}
                         for record in index.segments],
            "clusters": index.clusters, "profiles": index.profiles, "snapshot_id": index.snapshot_id,
            "model": dict(index.manifest.metadata.get("model", {})), "intelligence": index.info}


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
