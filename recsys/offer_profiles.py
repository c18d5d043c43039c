"""What an offer decision reads about every customer of a snapshot, as sorted columns.

A serving worker holds these in memory (about 50 bytes a customer, plus the id), so that deciding a
customer's offers needs one store round trip, the atomic step of the caps, instead of a profile read
before it. They are published with the snapshot in chunks under :data:`recsys.records.META`: the profile
fields by the customer profiles' writer, each customer's top recommended item (which bundle offers
carry) by the recommendations' writer; a worker joins the two when it loads a snapshot.

Ids are kept as sorted UTF-8 bytes of one width, so a lookup is a binary search and no per-customer
Python object is held; an id ending in NUL, which such an array cannot tell from the id without it, is left
out (the store answers for it). ``None`` fields are NaN (numbers) or code -1 (segment, country).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.records import CustomerProfile

OFFER_PROFILES_KEY = "offer_profiles"  # META keys offer_profiles:<chunk>; manifest field of the same name
TOP_ITEMS_KEY = "top_items"  # META keys top_items:<chunk>; manifest field of the same name
CHUNK_CUSTOMERS = 500_000  # one chunk of 500,000 customers is about 25 MB, far below Redis' 512 MB a value
NUMBERS = ("churn_probability", "clv", "recency_days", "frequency")


def chunk_key(kind: str, chunk: int) -> str:
    return f"{kind}:{chunk}"


def holdable(customer_id: str) -> bool:
    """Whether a table can hold this id (see the module's note on NUL)."""
    return not customer_id.endswith("\0")


def _sorted_ids(ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The holdable ids (as text), encoded and sorted, and their positions in ``ids``."""
    text = [str(customer_id) for customer_id in ids]
    kept = np.array([i for i, customer_id in enumerate(text) if holdable(customer_id)], dtype=np.int64)
    encoded = np.array([text[i].encode() for i in kept], dtype=bytes)
    order = np.argsort(encoded, kind="stable")
    return encoded[order], kept[order]


def _to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _from_bytes(value: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(value), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def _codes(values: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    names = sorted({v for v in values if v is not None})
    code = {name: i for i, name in enumerate(names)}
    return np.array([code.get(v, -1) if v is not None else -1 for v in values], dtype=np.int32), \
        np.array(names, dtype=str)


def encode_profile_chunks(profiles: Sequence[CustomerProfile],
                          chunk_customers: int = CHUNK_CUSTOMERS) -> list[bytes]:
    """The eligibility fields of ``profiles`` as chunks of sorted columns (chunk i holds the i-th run of
    ids in sorted order)."""
    ids, order = _sorted_ids([p.customer_id for p in profiles])
    ordered = [profiles[i] for i in order]
    chunks = []
    for start in range(0, max(len(ordered), 1), chunk_customers):
        part = ordered[start:start + chunk_customers]
        segment, segments = _codes([p.segment for p in part])
        country, countries = _codes([p.country for p in part])
        arrays = {"ids": ids[start:start + chunk_customers], "segment": segment, "segments": segments,
                  "country": country, "countries": countries}
        for name in NUMBERS:
            arrays[name] = np.array([np.nan if getattr(p, name) is None else getattr(p, name) for p in part],
                                    dtype=np.float64)
        chunks.append(_to_bytes(arrays))
    return chunks


def encode_top_item_chunks(blocks: Iterable[tuple[np.ndarray, np.ndarray]],
                           chunk_customers: int = CHUNK_CUSTOMERS) -> list[bytes]:
    """Each customer's top item row (-1: an empty list) from ``(customer ids, item rows)`` blocks, whose
    item rows are ranked lists padded with -1."""
    ids, tops = [], []
    for keys, item_rows in blocks:
        ids.extend(keys)
        tops.append(item_rows[:, 0] if item_rows.shape[1] else np.full(len(keys), -1))
    encoded, order = _sorted_ids(ids)
    top = (np.concatenate(tops) if tops else np.zeros(0))[order].astype(np.int32)
    return [_to_bytes({"ids": encoded[start:start + chunk_customers], "top": top[start:start + chunk_customers]})
            for start in range(0, max(len(encoded), 1), chunk_customers)]


@dataclass(frozen=True)
class OfferProfiles:
    """Every customer's eligibility fields and top item row, looked up by id. A customer's values sit in
    one row of two arrays, so reading them is two calls rather than one per field."""

    ids: np.ndarray
    numbers: np.ndarray  # (customers, 4) float64 in NUMBERS order, NaN where unknown
    codes: np.ndarray  # (customers, 3) int32: segment, country, top item row; -1 where none
    segments: list[str]
    countries: list[str]

    @classmethod
    def from_chunks(cls, profile_chunks: Sequence[bytes], top_item_chunks: Sequence[bytes]) -> OfferProfiles:
        parts = [_from_bytes(chunk) for chunk in profile_chunks]
        ids = np.concatenate([p["ids"] for p in parts]) if parts else np.zeros(0, dtype=bytes)
        segments = sorted({str(s) for p in parts for s in p["segments"]})
        countries = sorted({str(c) for p in parts for c in p["countries"]})
        codes = np.full((len(ids), 3), -1, dtype=np.int32)
        if parts:
            codes[:, 0] = np.concatenate([_recoded(p["segment"], p["segments"], segments) for p in parts])
            codes[:, 1] = np.concatenate([_recoded(p["country"], p["countries"], countries) for p in parts])
        numbers = np.column_stack([np.concatenate([p[name] for p in parts]) for name in NUMBERS]) if parts \
            else np.zeros((0, len(NUMBERS)))
        for chunk in top_item_chunks:
            tops = _from_bytes(chunk)
            rows = _rows_of(ids, tops["ids"])
            found = rows >= 0
            codes[rows[found], 2] = tops["top"][found]
        return cls(ids, np.ascontiguousarray(numbers, dtype=np.float64), codes, segments, countries)

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, customer_id: str) -> int | None:
        if not holdable(customer_id):
            return None
        key = customer_id.encode()
        row = int(self.ids.searchsorted(key))
        return row if row < len(self.ids) and self.ids[row] == key else None

    def profile(self, row: int) -> tuple[CustomerProfile, int]:
        """The customer's profile as far as offers read it (segment, churn probability, CLV, recency,
        orders and country; scores and reasons are left at 0 and empty), and their top item row (-1:
        none)."""
        churn, clv, recency, orders = (None if value != value else value for value in self.numbers[row].tolist())
        segment, country, top_item = self.codes[row].tolist()
        return CustomerProfile.from_fields({
            "customer_id": self.ids[row].decode(), "segment": self.segments[segment] if segment >= 0 else None,
            "recency_score": 0, "frequency_score": 0, "monetary_score": 0, "churn_probability": churn, "clv": clv,
            "recency_days": recency, "frequency": None if orders is None else int(orders),
            "country": self.countries[country] if country >= 0 else None}), top_item


def _recoded(codes: np.ndarray, names: np.ndarray, merged: list[str]) -> np.ndarray:
    """A chunk's codes into the merged, sorted list of names (-1 stays -1)."""
    position = np.array([merged.index(str(n)) for n in names] + [-1], dtype=np.int32)
    return position[codes]


def _rows_of(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    rows = np.minimum(sorted_ids.searchsorted(ids), max(len(sorted_ids) - 1, 0))
    if not len(sorted_ids):
        return np.full(len(ids), -1)
    return np.where(sorted_ids[rows] == ids, rows, -1)
