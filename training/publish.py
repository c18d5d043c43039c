"""Publishing: score a trained bundle into ranked lists, then write them as one snapshot of the online
store, made current atomically. Scoring and writing are separate steps so that the lists can be
computed elsewhere (in parallel, per partition) and written by a fast, dumb writer."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from feature_store import Manifest, OnlineStore, SnapshotWriter
from recsys.offer_profiles import TOP_ITEMS_KEY, chunk_key, encode_top_item_chunks
from recsys.records import (
    CATALOG_KEY,
    META,
    POPULAR,
    POPULAR_LISTS,
    RECOMMENDATIONS,
    RECORD_FORMAT,
    RECORD_FORMAT_FIELD,
    SIMILAR,
    Catalog,
    RankedRows,
    encode_customer_records,
    encode_ranked_rows,
)
from training.bundle import ModelBundle
from training.progress import Reporter


@dataclass(frozen=True)
class PublishOptions:
    top_n: int = 50
    similar_n: int = 30
    batch_size: int = 50_000


@dataclass(frozen=True)
class RankedBlock:
    """Ranked lists for consecutive keys: ``(n, k)`` item rows (-1 padded), scores, and what produced
    them: one source name for the block, or an ``(n, k)`` array of names, one per slot."""

    keys: np.ndarray
    item_rows: np.ndarray
    scores: np.ndarray
    source: str | np.ndarray

    def source_names(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else sorted(pd.unique(self.source.ravel()))

    def rows(self, code: dict[str, int]) -> RankedRows:
        return RankedRows(self.item_rows, self.scores, self.source_codes(code))

    def source_codes(self, code: dict[str, int]) -> np.ndarray:
        if isinstance(self.source, str):
            return np.uint8(code[self.source])
        # hash-based, not sorting: a block holds millions of slots
        inverse, names = pd.factorize(self.source.ravel())
        return np.asarray([code[n] for n in names], dtype=np.uint8)[inverse].reshape(self.source.shape)


@dataclass
class SnapshotLists:
    """Everything a snapshot holds, scored and ready to write."""

    catalog: Catalog
    customers: list[RankedBlock]
    #: per customer, the model's list of items they never bought (blocks as ``customers``); None when
    #: that is ``customers``' lists without the bought items, which serving then filters
    new_items: list[RankedBlock] | None
    #: where ``new_items`` is None: per customer, the items never bought that the model ranks next after
    #: their list, as many as the list holds bought items (blocks as ``customers``)
    beyond_ranked: list[RankedBlock] | None
    similar: list[RankedBlock]
    popular: dict[str, RankedBlock]
    customer_ids: np.ndarray
    history: sp.csr_matrix
    sources: list[str]


def score_bundle(bundle: ModelBundle, options: PublishOptions, reporter: Reporter | None = None) -> SnapshotLists:
    reporter = reporter or Reporter()
    personal, similar = bundle.models["personal"], bundle.models["similar"]
    customer_blocks, new_item_blocks, beyond_blocks, similar_blocks = [], [], [], []
    with reporter.counting("Scoring customer recommendations", len(bundle.customers)) as advance:
        for rows in _batches(len(bundle.customers), options.batch_size):
            keys = bundle.customers.ids[rows]
            if personal.ranks_new_items_apart:
                # a ranker orders first purchases with a model of their own: its full list without the
                # bought items would serve "exclude already bought" worse
                customer_blocks.append(RankedBlock(keys, *personal.recommend_with_sources(rows, options.top_n)))
                new_item_blocks.append(RankedBlock(keys, *personal.recommend_with_sources(rows, options.top_n,
                                                                                       exclude_seen=True)))
            else:
                block, beyond = _ranked_and_beyond(personal, rows, keys, bundle.history, options.top_n)
                customer_blocks.append(block)
                beyond_blocks.append(beyond)
            advance(len(rows))
    with reporter.step("Scoring similar items and popular lists"):
        for rows in _batches(len(bundle.items), options.batch_size):
            item_rows, scores = similar.similar_items(rows, options.similar_n)
            similar_blocks.append(RankedBlock(bundle.items.ids[rows], item_rows, scores, similar.name))
        popular = {}
        for role in POPULAR_LISTS:
            if role in bundle.models:
                # every item the list ranks, not top_n: these lists fill every short answer, up to the
                # largest k serving allows, and an include_items rule may ask for any catalogue item
                item_rows, scores = bundle.models[role].recommend(np.zeros(1, np.int64), len(bundle.items))
                popular[role] = RankedBlock(np.asarray([role], dtype=object), item_rows, scores, role)
    blocks = customer_blocks + new_item_blocks + beyond_blocks + similar_blocks + list(popular.values())
    sources = list(dict.fromkeys([name for b in blocks for name in b.source_names()] + ["popular", "rule"]))
    if len(sources) > 255:
        raise ValueError(f"{len(sources)} distinct sources do not fit the one-byte source code")
    apart = personal.ranks_new_items_apart
    return SnapshotLists(bundle.catalog, customer_blocks, new_item_blocks if apart else None,
                         None if apart else beyond_blocks, similar_blocks, popular, bundle.customers.ids,
                         bundle.history, sources)


def _ranked_and_beyond(model, rows: np.ndarray, keys: np.ndarray, history: sp.csr_matrix,
                       top_n: int) -> tuple[RankedBlock, RankedBlock]:
    """Each customer's top ``top_n``, and after it the new items the model ranks next, as many as the
    top ``top_n`` holds bought items. Without those, a request that excludes bought items would fill a
    heavy buyer's answer from the popular items rather than from the model (the more so, the more a
    model favours repeats).

    One ranking of ``2 * top_n`` items serves both for most customers; those who bought so much of it
    that its second half holds too few new items are ranked again without their purchases."""
    wide_items, wide_scores, wide_sources = model.recommend_with_sources(rows, min(2 * top_n, model.n_items))
    items = wide_items[:, :top_n]
    ranked = RankedBlock(keys, items, wide_scores[:, :top_n], _columns(wide_sources, slice(0, top_n)))
    bought = history[rows]
    wanted = _holds(bought, items).sum(axis=1)
    # the second half without the bought items is the model's order of new items after the list
    after = wide_items[:, top_n:]
    keep = _first(~_holds(bought, after) & (after >= 0), wanted)
    beyond = _front(keep, after, wide_scores[:, top_n:], _columns(wide_sources, slice(top_n, None)))
    exhausted = (after < 0).any(axis=1) | (after.shape[1] == 0)  # the model ranks nothing further
    again = np.flatnonzero((keep.sum(axis=1) < wanted) & ~exhausted)
    if len(again):
        new_items, new_scores, new_sources = model.recommend_with_sources(rows[again], top_n, exclude_seen=True)
        fresh = _first(~_holds(_rows_matrix(items[again], history.shape[1]), new_items) & (new_items >= 0),
                       wanted[again])
        beyond = _with_rows(beyond, again, _front(fresh, new_items, new_scores, new_sources), model.name)
    return ranked, RankedBlock(keys, *beyond)


def _first(candidates: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``candidates`` (a boolean ``(n, k)`` mask) cut to each row's first ``wanted[row]`` slots."""
    return candidates & (np.cumsum(candidates, axis=1) <= wanted[:, None])


def _front(keep: np.ndarray, items: np.ndarray, scores: np.ndarray, sources: str | np.ndarray):
    """The kept slots of each row, in their order, moved to the front; the rest padded (-1, 0); as
    narrow as the longest row of kept slots."""
    order = np.argsort(~keep, axis=1, kind="stable")[:, :int(keep.sum(axis=1).max(initial=0))]
    kept = np.take_along_axis(keep, order, axis=1)
    front_items = np.where(kept, np.take_along_axis(items, order, axis=1), -1)
    front_scores = np.where(kept, np.take_along_axis(scores, order, axis=1), 0.0).astype(np.float32)
    if isinstance(sources, str):
        return front_items, front_scores, sources
    return front_items, front_scores, np.take_along_axis(sources, order, axis=1)


def _with_rows(lists: tuple, rows: np.ndarray, part: tuple, fill_source: str) -> tuple:
    """``lists`` (items, scores, sources) with rows ``rows`` replaced by ``part``'s, both widened to the
    wider of the two; one source name stays one name where both name the same."""
    (items, scores, sources), (part_items, part_scores, part_sources) = lists, part
    width = max(items.shape[1], part_items.shape[1])
    items, scores = _pad(items, width, -1), _pad(scores, width, 0.0)
    items[rows], scores[rows] = _pad(part_items, width, -1), _pad(part_scores, width, 0.0)
    if isinstance(sources, str) and sources == part_sources:
        return items, scores, sources
    slots = _pad(_slot_names(sources, lists[0].shape), width, fill_source)
    slots[rows] = _pad(_slot_names(part_sources, part_items.shape), width, fill_source)
    return items, scores, slots


def _slot_names(sources: str | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.full(shape, sources, dtype=object) if isinstance(sources, str) else sources


def _columns(sources: str | np.ndarray, columns: slice) -> str | np.ndarray:
    return sources if isinstance(sources, str) else sources[:, columns]


def _pad(array: np.ndarray, width: int, fill) -> np.ndarray:
    """``array`` widened with ``fill`` columns on the right up to ``width`` (a copy either way)."""
    padding = np.full((array.shape[0], max(width - array.shape[1], 0)), fill, dtype=array.dtype)
    return np.hstack([array, padding])


def _holds(matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """Whether row ``i`` of ``matrix`` stores column ``columns[i, j]``, for every slot of the ``(n, k)``
    array ``columns`` (slots of -1 read False)."""
    rows = np.repeat(np.arange(columns.shape[0]), columns.shape[1])
    stored = matrix.astype(bool)[rows, np.maximum(columns, 0).ravel()]
    return np.asarray(stored).reshape(columns.shape) & (columns >= 0)


def _rows_matrix(columns: np.ndarray, n_columns: int) -> sp.csr_matrix:
    """A boolean CSR matrix whose row ``i`` stores the columns ``columns[i]`` (-1 slots left out)."""
    valid = columns >= 0
    return sp.csr_matrix((np.ones(int(valid.sum()), bool), (np.nonzero(valid)[0], columns[valid])),
                         shape=(columns.shape[0], n_columns))


#: Writes further namespaces into the snapshot being built and returns metadata for its manifest.
SnapshotPart = Callable[[SnapshotWriter], dict[str, Any]]


def write_snapshot(lists: SnapshotLists, store: OnlineStore, metadata: dict[str, Any],
                   reporter: Reporter | None = None, parts: Sequence[SnapshotPart] = ()) -> Manifest:
    """Write every namespace under a new snapshot id, then commit; an error aborts and changes nothing.

    ``parts`` add what other jobs produced (customer profiles, the offer catalogue, ...) to the same
    snapshot, so that a reader never sees recommendations of one run beside profiles of another.
    """
    reporter = reporter or Reporter()
    code = {name: i for i, name in enumerate(lists.sources)}
    with _heap_frozen(), store.begin_snapshot() as writer:
        writer.write(META, [CATALOG_KEY], [lists.catalog.to_bytes()])
        history = lists.history
        with reporter.counting("Writing customer recommendations", len(lists.customer_ids)) as advance:
            start = 0
            new_item_blocks = lists.new_items or [None] * len(lists.customers)
            beyond_blocks = lists.beyond_ranked or [None] * len(lists.customers)
            for block, new_items, beyond in zip(lists.customers, new_item_blocks, beyond_blocks, strict=True):
                indptr = history.indptr[start:start + len(block.keys) + 1]
                values = encode_customer_records(
                    block.rows(code), None if new_items is None else new_items.rows(code), indptr,
                    history.indices[indptr[0]:indptr[-1]], None if beyond is None else beyond.rows(code))
                writer.write(RECOMMENDATIONS, block.keys, values)
                start += len(block.keys)
                advance(len(block.keys))
        with reporter.step("Writing similar items and popular lists"):
            for block in lists.similar:
                writer.write(SIMILAR, block.keys, encode_ranked_rows(block.item_rows, block.scores,
                                                                     block.source_codes(code)))
            for name, block in lists.popular.items():
                values = encode_ranked_rows(block.item_rows, block.scores, block.source_codes(code))
                writer.write(POPULAR, [name], values)
        extra = write_meta_chunks(writer, TOP_ITEMS_KEY, encode_top_item_chunks(
            (block.keys, block.item_rows) for block in lists.customers))
        for part in parts:
            extra.update(part(writer))
        return writer.commit({**metadata, **extra, RECORD_FORMAT_FIELD: RECORD_FORMAT, "sources": lists.sources,
                              "customers": len(lists.customer_ids), "items": len(lists.catalog)})


def write_meta_chunks(writer: SnapshotWriter, kind: str, chunks: Sequence[bytes], **info: Any) -> dict[str, Any]:
    """Write ``chunks`` under ``META`` as ``<kind>:<i>``; the manifest field naming them."""
    writer.write(META, [chunk_key(kind, i) for i in range(len(chunks))], list(chunks))
    return {kind: {"chunks": len(chunks), **info}}


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Keep the garbage collector off what training left alive while millions of values are written:
    every collection would otherwise rescan the whole training heap."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def publish_bundle(bundle: ModelBundle, store: OnlineStore, model_info: dict[str, Any],
                   options: PublishOptions | None = None, reporter: Reporter | None = None,
                   extra_metadata: dict[str, Any] | None = None, parts: Sequence[SnapshotPart] = ()) -> Manifest:
    options = options or PublishOptions()
    lists = score_bundle(bundle, options, reporter)
    metadata = {"model": model_info, "top_n": options.top_n, "similar_n": options.similar_n,
                "reference_time": bundle.info.get("reference_time"), **(extra_metadata or {})}
    return write_snapshot(lists, store, metadata, reporter, parts)


def _batches(total: int, size: int) -> Iterator[np.ndarray]:
    for start in range(0, total, size):
        yield np.arange(start, min(total, start + size), dtype=np.int64)
