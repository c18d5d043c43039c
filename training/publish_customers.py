"""Customer intelligence as part of a snapshot: profiles by id, segment definitions, and each segment's
members as columnar pages that carry every profile field, so a segment can be filtered and exported
page by page without looking each customer up again.

Layout (namespaces from :mod:`recsys.records`)::

    profile          customer id -> CustomerProfile bytes
    segment          segment name -> segment record (name, slug, definition, size, revenue_share, pages, ...)
                     SEGMENT_INDEX_KEY -> {"segments": [records in order], "clusters", "columns", ...}
    segment_members  "<segment name>:<page>" -> {"column": [values of up to page_size members], ...}

Members keep the order of ``profiles``. Churn reasons are flattened into ``reason_<i>_feature``,
``reason_<i>_value`` and ``reason_<i>_contribution`` columns (``None`` past a customer's last reason),
so an export writes rows straight from the columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from feature_store import SnapshotWriter
from recsys.offer_profiles import OFFER_PROFILES_KEY, encode_profile_chunks
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
from training.publish import SnapshotPart, write_meta_chunks

PROFILE_COLUMNS = ("customer_id", "segment", "recency_score", "frequency_score", "monetary_score", "cluster",
                   "cluster_name", "churn_probability", "p_alive", "expected_purchases", "clv", "recency_days",
                   "frequency", "monetary", "country")
REASON_FIELDS = ("feature", "value", "contribution")
WRITE_BATCH = 50_000


class CustomerPublishError(ValueError):
    """The profiles and segment definitions disagree, or a name cannot be served."""


def reason_columns(n_reasons: int) -> list[str]:
    return [f"reason_{i}_{field}" for i in range(1, n_reasons + 1) for field in REASON_FIELDS]


def customer_snapshot_part(profiles: Sequence[CustomerProfile], segments: Sequence[Mapping[str, Any]],
                           clusters: Sequence[Mapping[str, Any]] | None = None, page_size: int = 1000,
                           info: Mapping[str, Any] | None = None) -> SnapshotPart:
    """A ``parts`` entry for :func:`training.publish.write_snapshot` that writes the three namespaces.

    ``segments`` are the segment definitions (``name`` required; ``definition``, ``revenue_share`` and
    any other JSON fields are kept). Their ``size`` is the member count; a given size that disagrees
    with the profiles is an error, as is a profile whose segment is not defined. ``info`` (e.g. the
    CLV fit status, run id) goes into the manifest and is served with every profile.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    seen: set[str] = set()
    repeated = [p.customer_id for p in profiles if p.customer_id in seen or seen.add(p.customer_id)]
    if repeated:
        # the store would keep the last profile while the segment pages list every copy
        raise CustomerPublishError(f"{len(repeated)} customer id(s) appear more than once among the profiles, "
                                   f"e.g. {sorted(set(repeated))[:5]}")
    records = _segment_records(profiles, segments, page_size)
    columns = _columns(profiles)

    def write(writer: SnapshotWriter) -> dict[str, Any]:
        for start in range(0, len(profiles), WRITE_BATCH):
            batch = profiles[start:start + WRITE_BATCH]
            writer.write(PROFILES, [p.customer_id for p in batch], [p.to_bytes() for p in batch])
        offer_profiles = write_offer_profiles(writer, profiles)
        n_reasons = sum(1 for name in columns if name.endswith("_feature"))
        index = {"segments": records, "clusters": [dict(c) for c in clusters or ()], "page_size": page_size,
                 "profiles": len(profiles), "columns": [*PROFILE_COLUMNS, *reason_columns(n_reasons)],
                 "info": dict(info or {})}
        writer.write(SEGMENTS, [r["name"] for r in records] + [SEGMENT_INDEX_KEY],
                     [orjson.dumps(r) for r in records] + [orjson.dumps(index)])
        _write_pages(writer, columns, [r["name"] for r in records], page_size)
        return {"customer_intelligence": {
            "segments": [r["name"] for r in records], "segment_sizes": {r["name"]: r["size"] for r in records},
            "page_size": page_size, "profiles": len(profiles), "clusters": len(index["clusters"]),
            "info": dict(info or {})}, **offer_profiles}

    return write


def write_offer_profiles(writer: SnapshotWriter, profiles: Sequence[CustomerProfile]) -> dict[str, Any]:
    """Write the columns offer decisions read (:mod:`recsys.offer_profiles`); the manifest fields to add."""
    return write_meta_chunks(writer, OFFER_PROFILES_KEY, encode_profile_chunks(profiles), customers=len(profiles))


def _segment_records(profiles: Sequence[CustomerProfile], segments: Sequence[Mapping[str, Any]],
                     page_size: int) -> list[dict[str, Any]]:
    names = [str(s["name"]) for s in segments]
    counts = dict.fromkeys(names, 0)
    undefined: set[str] = set()
    for profile in profiles:
        if profile.segment in counts:
            counts[profile.segment] += 1
        else:
            undefined.add(profile.segment)
    if undefined:
        raise CustomerPublishError(f"profiles name segments with no definition: {sorted(undefined)}")
    slugs: dict[str, str] = {}
    records = []
    for segment, name in zip(segments, names, strict=True):
        slug = slugify(name)
        if name in (SEGMENT_INDEX_KEY, ALL_SEGMENTS) or slug == ALL_SEGMENTS or not slug:
            raise CustomerPublishError(f"segment name {name!r} is reserved or has no letters or digits")
        if slug in slugs:
            raise CustomerPublishError(f"segments {slugs[slug]!r} and {name!r} share the slug {slug!r}")
        slugs[slug] = name
        size = counts[name]
        if segment.get("size") is not None and int(segment["size"]) != size:
            raise CustomerPublishError(f"segment {name!r} says size {segment['size']} but {size} profiles name it")
        records.append({**segment, "name": name, "slug": slug, "size": size,
                        "pages": -(-size // page_size), "page_size": page_size})
    return records


def _columns(profiles: Sequence[CustomerProfile]) -> dict[str, list]:
    columns: dict[str, list] = {name: [getattr(p, name) for p in profiles] for name in PROFILE_COLUMNS}
    reasons = [p.churn_reasons for p in profiles]
    n_reasons = max(map(len, reasons), default=0)
    for i in range(n_reasons):
        nth = [r[i] if len(r) > i else None for r in reasons]
        for field in REASON_FIELDS:
            columns[f"reason_{i + 1}_{field}"] = [None if r is None else r.get(field) for r in nth]
    return columns


def _write_pages(writer: SnapshotWriter, columns: dict[str, list], segment_order: list[str], page_size: int) -> None:
    """Group rows by segment with one stable sort, then slice each segment's run into pages."""
    segment_of = np.asarray(columns["segment"], dtype=object)
    code = {name: i for i, name in enumerate(segment_order)}
    codes = np.fromiter((code[s] for s in segment_of), dtype=np.int64, count=len(segment_of))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(segment_order) + 1))
    arrays = {name: np.asarray(values, dtype=object) for name, values in columns.items() if name != "segment"}
    keys: list[str] = []
    values: list[bytes] = []
    for i, name in enumerate(segment_order):
        rows = order[bounds[i]:bounds[i + 1]]
        for page, start in enumerate(range(0, len(rows), page_size)):
            take = rows[start:start + page_size]
            keys.append(member_page_key(name, page))
            values.append(orjson.dumps({column: array[take].tolist() for column, array in arrays.items()},
                                       option=orjson.OPT_SERIALIZE_NUMPY))
            if len(keys) >= 200:
                writer.write(SEGMENT_MEMBERS, keys, values)
                keys, values = [], []
    if keys:
        writer.write(SEGMENT_MEMBERS, keys, values)
