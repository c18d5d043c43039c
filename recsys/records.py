"""Byte layouts of what a published snapshot holds; training encodes, serving decodes.

A ranked list is a packed little-endian array of ``(item row uint32, score float32, source uint8)``.
Item rows index the snapshot's catalogue, and source codes index the snapshot's list of source
names, both stored once per snapshot, so a customer's list costs 9 bytes an entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np
import orjson

# Namespaces of a snapshot: training writes them, serving reads them.
RECOMMENDATIONS = "rec"  # customer id -> customer record (ranked lists + purchase history)
SIMILAR = "similar"
POPULAR = "popular"
META = "meta"
POPULAR_LISTS = ("popular", "trending")  # keys of the POPULAR namespace
CATALOG_KEY = "catalog"

RANKED_DTYPE = np.dtype([("item", "<u4"), ("score", "<f4"), ("source", "u1")])
#: Layout of the customer records in RECOMMENDATIONS, named in each snapshot's manifest (a manifest
#: without it is format 1). 1: ranked list, history; 2: ranked list, new-items list (or a mark that
#: there is none), history; 3: as 2, with the list of new items ranked beyond the ranked list before the
#: history. Publishing writes RECORD_FORMAT; serving reads every READABLE_RECORD_FORMATS entry, so
#: servers upgraded first keep serving the snapshot an earlier release published.
RECORD_FORMAT = 3
READABLE_RECORD_FORMATS = (1, 2, 3)
RECORD_FORMAT_FIELD = "record_format"


def record_format_of(manifest_metadata: Mapping[str, Any]) -> int:
    """The customer-record format a snapshot's manifest metadata names (1 where it names none)."""
    return manifest_metadata.get(RECORD_FORMAT_FIELD, 1)


def _packed_rows(item_rows: np.ndarray, scores: np.ndarray, sources: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The whole ``(n, k)`` block packed row after row, and each row's count of valid entries."""
    item_rows = np.asarray(item_rows)
    n, k = item_rows.shape
    packed = np.empty((n, k), dtype=RANKED_DTYPE)
    packed["item"] = np.where(item_rows < 0, 0, item_rows)
    packed["score"] = np.nan_to_num(scores, neginf=0.0, posinf=0.0)
    packed["source"] = np.broadcast_to(sources, (n, k))
    # Padding only ever sits at the end of a row, so a row's valid prefix length is its count.
    return packed.tobytes(), (item_rows >= 0).sum(axis=1)


def encode_ranked_rows(item_rows: np.ndarray, scores: np.ndarray, sources: np.ndarray) -> list[bytes]:
    """Encode an ``(n, k)`` block of ranked lists; slots with item row ``-1`` are dropped."""
    buffer, counts = _packed_rows(item_rows, scores, sources)
    # Slicing one buffer costs a fraction of a per-row numpy call: this runs for millions of customers.
    row_size = np.asarray(item_rows).shape[1] * RANKED_DTYPE.itemsize
    starts = range(0, len(buffer), row_size) if row_size else [0] * len(counts)
    return [buffer[a:a + c] for a, c in zip(starts, (counts * RANKED_DTYPE.itemsize).tolist(), strict=True)]


def encode_ranked(item_rows: Sequence[int], scores: Sequence[float], sources: Sequence[int] | int) -> bytes:
    rows = np.asarray(item_rows, dtype=np.int64).reshape(1, -1)
    return encode_ranked_rows(rows, np.asarray(scores, dtype=np.float32).reshape(1, -1),
                              np.asarray(sources, dtype=np.uint8))[0]


def decode_ranked(value: bytes) -> np.ndarray:
    """A structured array with fields ``item``, ``score``, ``source``."""
    if len(value) % RANKED_DTYPE.itemsize:
        raise ValueError(f"ranked list of {len(value)} bytes is not a multiple of {RANKED_DTYPE.itemsize}")
    return np.frombuffer(value, dtype=RANKED_DTYPE)


class RankedRows(NamedTuple):
    """An ``(n, k)`` block of ranked lists: item rows (-1 padded at the end), scores, source codes."""

    item_rows: np.ndarray
    scores: np.ndarray
    sources: np.ndarray


class CustomerRecord(NamedTuple):
    """A decoded customer record; ``ranked`` and ``new_items`` as :func:`decode_ranked`."""

    #: every item the model ranks for the customer, bought before or not
    ranked: np.ndarray
    #: items the customer never bought, as the model ranks them for a first purchase (what an "exclude
    #: already bought" request serves: a ranker learns those apart from repeats); None where that
    #: order is ``ranked``'s, which then serves without the bought items
    new_items: np.ndarray | None
    #: item rows the customer bought
    bought: np.ndarray
    #: where ``new_items`` is None, the items never bought that the model ranks next after ``ranked``:
    #: as many as ``ranked`` holds bought items, so that without them the list stays as long
    beyond_ranked: np.ndarray

    def first_purchase_order(self) -> np.ndarray:
        """What a request that excludes bought items walks (its filter drops the bought ones): the
        model's own order of first purchases, or else ``ranked`` and then ``beyond_ranked``."""
        if self.new_items is not None:
            return self.new_items
        if not len(self.beyond_ranked):
            return self.ranked
        return np.concatenate([self.ranked, self.beyond_ranked])


#: the new-items list's length field when the record holds none (``ranked`` orders new items too)
_NO_NEW_ITEMS = 0xFFFF


def encode_customer_records(ranked: RankedRows, new_items: RankedRows | None, history_indptr: np.ndarray,
                            history_indices: np.ndarray, beyond_ranked: RankedRows | None = None) -> list[bytes]:
    """One value per customer (record format :data:`RECORD_FORMAT`): the ranked list, the new-items
    list and the list beyond the ranked one, each a ``uint16`` length and its entries, then the item rows
    the customer bought (``uint32``), so a single read serves a list with or without "exclude already
    bought". Without ``new_items`` its length is ``0xFFFF`` and no entry follows; without
    ``beyond_ranked`` that list is empty.

    ``history_indptr``/``history_indices`` are the CSR parts of the customers' rows of the history matrix.
    """
    size = RANKED_DTYPE.itemsize
    ranked_rows = encode_ranked_rows(*ranked)
    blocks = [block for block in (ranked, new_items, beyond_ranked) if block is not None]
    width = max(np.asarray(block.item_rows).shape[1] for block in blocks)
    if width >= _NO_NEW_ITEMS:
        raise ValueError(f"a customer record holds lists of at most {_NO_NEW_ITEMS - 1} items, not {width}")
    headers = [count.to_bytes(2, "little") for count in range(width + 1)]
    none = _NO_NEW_ITEMS.to_bytes(2, "little")
    new_rows = ([none] * len(ranked_rows) if new_items is None
                else [headers[len(r) // size] + r for r in encode_ranked_rows(*new_items)])
    beyond_rows = ([headers[0]] * len(ranked_rows) if beyond_ranked is None
                   else [headers[len(r) // size] + r for r in encode_ranked_rows(*beyond_ranked)])
    history = np.asarray(history_indices, dtype="<u4").tobytes()
    offsets = ((np.asarray(history_indptr) - history_indptr[0]) * 4).tolist()
    spans = zip(offsets[:-1], offsets[1:], strict=True)
    # one join of the parts per customer: this runs for millions of them
    return [b"".join((headers[len(r) // size], r, n, b, history[start:end]))
            for r, n, b, (start, end) in zip(ranked_rows, new_rows, beyond_rows, spans, strict=True)]


def decode_customer_record(value: bytes, record_format: int = RECORD_FORMAT) -> CustomerRecord:
    """The ranked lists and the bought item rows of a customer record of ``record_format``."""
    ranked, offset = _read_list(value, 0, record_format)
    new_items = None
    if record_format >= 2:
        new_items, offset = _read_list(value, offset, record_format, absent_allowed=True)
    beyond = np.zeros(0, dtype=RANKED_DTYPE)
    if record_format >= 3:
        beyond, offset = _read_list(value, offset, record_format)
    if (len(value) - offset) % 4:
        raise _truncated(value, record_format)
    return CustomerRecord(ranked, new_items, np.frombuffer(value, dtype="<u4", offset=offset), beyond)


def _read_list(value: bytes, offset: int, record_format: int,
               absent_allowed: bool = False) -> tuple[np.ndarray | None, int]:
    """The ranked list whose ``uint16`` length sits at ``offset``, and the offset after it; ``None``
    for the length that marks no new-items list, where ``absent_allowed``."""
    if len(value) < offset + 2:
        raise _truncated(value, record_format)
    count = int.from_bytes(value[offset:offset + 2], "little")
    if absent_allowed and count == _NO_NEW_ITEMS:
        return None, offset + 2
    end = offset + 2 + count * RANKED_DTYPE.itemsize
    if len(value) < end:
        raise _truncated(value, record_format)
    return np.frombuffer(value, dtype=RANKED_DTYPE, count=count, offset=offset + 2), end


def _truncated(value: bytes, record_format: int) -> ValueError:
    return ValueError(f"customer record of {len(value)} bytes does not hold its ranked lists and a history "
                      f"(record format {record_format})")


@dataclass(frozen=True)
class Catalog:
    """The items of one snapshot: ids by row, with optional name, category and price."""

    item_ids: list[str]
    names: list[str | None]
    categories: list[str | None]
    prices: list[float | None]

    def to_bytes(self) -> bytes:
        return orjson.dumps({"item_ids": self.item_ids, "names": self.names,
                             "categories": self.categories, "prices": self.prices})

    @classmethod
    def from_bytes(cls, value: bytes) -> Catalog:
        data = orjson.loads(value)
        return cls(data["item_ids"], data["names"], data["categories"], data["prices"])

    def __len__(self) -> int:
        return len(self.item_ids)


# Customer intelligence namespaces.
PROFILES = "profile"  # customer id -> CustomerProfile bytes
SEGMENTS = "segment"  # segment name -> orjson segment definition, size and revenue share
SEGMENT_MEMBERS = "segment_members"  # "<segment>:<page>" -> columnar orjson page of profile fields
SEGMENT_INDEX_KEY = "@index"  # in SEGMENTS: every segment in order, clusters, CSV columns
#: The walk over every segment in turn; no real segment may take this name.
ALL_SEGMENTS = "all"


def slugify(name: str) -> str:
    """``"Can't Lose Them"`` -> ``"cant-lose-them"``: apostrophes vanish, other runs of symbols become '-'."""
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"['\u2019]", "", name.lower())).strip("-")


def keys_with_a_top_item(keys: Sequence[str], records: Sequence[bytes | None]) -> set[str]:
    """The keys whose customer record (``None``: no record) ranks at least one item."""
    return {key for key, record in zip(keys, records, strict=True)
            if record is not None and first_ranked_item(record) is not None}


def first_ranked_item(value: bytes) -> int | None:
    """The item row at the top of a customer record's ranked list (None for an empty list), without
    decoding the rest of the record."""
    if _ranked_count(value) == 0:
        return None
    if len(value) < 2 + RANKED_DTYPE.itemsize:
        raise ValueError(f"customer record of {len(value)} bytes is shorter than its first ranked entry")
    return int.from_bytes(value[_FIRST_ITEM], "little")


def _ranked_count(value: bytes) -> int:
    """The length of a customer record's ranked list, from its ``uint16`` header."""
    if len(value) < 2:
        raise ValueError(f"customer record of {len(value)} bytes has no header")
    return int.from_bytes(value[:2], "little")


_ITEM_OFFSET = 2 + RANKED_DTYPE.fields["item"][1]
_FIRST_ITEM = slice(_ITEM_OFFSET, _ITEM_OFFSET + RANKED_DTYPE["item"].itemsize)


def member_page_key(segment: str, page: int) -> str:
    return f"{segment}:{page}"


@dataclass(frozen=True)
class CustomerProfile:
    """What marketers see about one customer, as of the snapshot's training cutoff.

    ``None`` means "not known" (e.g. lifetime-value fields when the fit was degenerate), never zero.
    ``churn_reasons`` are the top feature contributions: ``[{"feature", "value", "contribution"}]``.
    """

    customer_id: str
    segment: str
    recency_score: int
    frequency_score: int
    monetary_score: int
    cluster: int | None = None
    cluster_name: str | None = None
    churn_probability: float | None = None
    churn_reasons: list[dict] = field(default_factory=list)
    p_alive: float | None = None
    expected_purchases: float | None = None
    clv: float | None = None
    recency_days: float | None = None  # days from the last purchase to the cutoff
    frequency: int | None = None  # distinct orders before the cutoff
    monetary: float | None = None  # spend before the cutoff net of returns (floored at 0), as the M score ranks it
    country: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.__dict__, option=orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_bytes(cls, value: bytes) -> CustomerProfile:
        data = orjson.loads(value)
        if not isinstance(data, dict) or not _PROFILE_REQUIRED <= data.keys() <= _PROFILE_FIELDS:
            return cls(**data)  # raises TypeError naming the missing or unexpected field
        return cls.from_fields(data)

    @classmethod
    def from_fields(cls, data: dict) -> CustomerProfile:
        """A profile of checked field values (every required field, no unknown one)."""
        # Built on every offer decision: filling __dict__ skips the frozen dataclass's per-field
        # object.__setattr__, which costs more than decoding the profile.
        profile = object.__new__(cls)
        profile.__dict__.update(_PROFILE_DEFAULTS)
        profile.__dict__.update({name: make() for name, make in _PROFILE_FACTORIES.items()})
        profile.__dict__.update(data)
        return profile


_PROFILE_FIELDS = frozenset(f.name for f in fields(CustomerProfile))
_PROFILE_REQUIRED = frozenset(f.name for f in fields(CustomerProfile)
                              if f.default is MISSING and f.default_factory is MISSING)
_PROFILE_DEFAULTS = {f.name: f.default for f in fields(CustomerProfile) if f.default is not MISSING}
_PROFILE_FACTORIES = {f.name: f.default_factory for f in fields(CustomerProfile) if f.default_factory is not MISSING}
