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
    similar: list[RankedBlock]
    popular: dict[str, RankedBlock]
    customer_ids: np.ndarray
    history: sp.csr_matrix
    sources: list[str]


def score_bundle(bundle: ModelBundle, options: PublishOptions, reporter: Reporter | None = None) -> SnapshotLists:
    reporter = reporter or Reporter()
    personal, similar = bundle.models["personal"], bundle.models["similar"]
    customer_blocks, new_item_blocks, similar_blocks = [], [], []
    with reporter.counting("Scoring customer recommendations", len(bundle.customers)) as advance:
        for rows in _batches(len(bundle.customers), options.batch_size):
            keys = bundle.customers.ids[rows]
            customer_blocks.append(RankedBlock(keys, *personal.recommend_with_sources(rows, options.top_n)))
            if personal.ranks_new_items_apart:
                # a ranker orders first purchases with a model of their own: its full list without the
                # bought items would serve "exclude already bought" worse
                new_item_blocks.append(RankedBlock(keys, *personal.recommend_with_sources(rows, options.top_n,
                                                                                       exclude_seen=True)))
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
    blocks = customer_blocks + new_item_blocks + similar_blocks + list(popular.values())
    sources = list(dict.fromkeys([name for b in blocks for name in b.source_names()] + ["popular", "rule"]))
    if len(sources) > 255:
        raise ValueError(f"{len(sources)} distinct sources do not fit the one-byte source code")
    return SnapshotLists(bundle.catalog, customer_blocks, new_item_blocks if personal.ranks_new_items_apart else None,
                         similar_blocks, popular, bundle.customers.ids, bundle.history, sources)


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
            for block, new_items in zip(lists.customers, new_item_blocks, strict=True):
                indptr = history.indptr[start:start + len(block.keys) + 1]
                new_rows = None if new_items is None else new_items.rows(code)
                values = encode_customer_records(block.rows(code), new_rows, indptr,
                                                 history.indices[indptr[0]:indptr[-1]])
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
