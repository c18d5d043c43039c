"""Publishing: turn a trained bundle into one snapshot of the online store, made current atomically."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from feature_store import Manifest, OnlineStore
from recsys.records import (
    CATALOG_KEY,
    HISTORY,
    META,
    POPULAR,
    RECOMMENDATIONS,
    SIMILAR,
    encode_ranked_rows,
)
from training.bundle import ModelBundle
from training.progress import Reporter


@dataclass(frozen=True)
class PublishOptions:
    top_n: int = 50
    similar_n: int = 30
    history_n: int = 100
    batch_size: int = 50_000


def publish_bundle(bundle: ModelBundle, store: OnlineStore, model_info: dict[str, Any],
                   options: PublishOptions | None = None, reporter: Reporter | None = None,
                   extra_metadata: dict[str, Any] | None = None) -> Manifest:
    """Write every namespace under a new snapshot id, then commit; an error aborts and changes nothing."""
    options = options or PublishOptions()
    reporter = reporter or Reporter()
    sources = _source_names(bundle)
    code = {name: i for i, name in enumerate(sources)}
    n_customers = len(bundle.customers)
    with store.begin_snapshot() as writer:
        writer.write(META, [CATALOG_KEY], [bundle.catalog.to_bytes()])
        personal = bundle.models["personal"]
        with reporter.counting("Publishing customer recommendations", n_customers) as advance:
            for start, rows in _batches(n_customers, options.batch_size):
                item_rows, scores = personal.recommend(rows, options.top_n)
                values = encode_ranked_rows(item_rows, scores, np.uint8(code[_source(bundle, "personal")]))
                writer.write(RECOMMENDATIONS, bundle.customers.ids[start:start + len(rows)], values)
                writer.write(HISTORY, bundle.customers.ids[start:start + len(rows)],
                             _history_values(bundle, rows, options.history_n))
                advance(len(rows))
        with reporter.step("Publishing similar items and popular lists"):
            n_items = len(bundle.items)
            similar = bundle.models["similar"]
            for start, rows in _batches(n_items, options.batch_size):
                item_rows, scores = similar.similar_items(rows, options.similar_n)
                values = encode_ranked_rows(item_rows, scores, np.uint8(code[_source(bundle, "similar")]))
                writer.write(SIMILAR, bundle.items.ids[start:start + len(rows)], values)
            for role in ("popular", "trending"):
                if role in bundle.models:
                    item_rows, scores = bundle.models[role].recommend(np.zeros(1, np.int64), options.top_n)
                    writer.write(POPULAR, [role], encode_ranked_rows(item_rows, scores,
                                                                     np.uint8(code[_source(bundle, role)])))
        metadata = {"model": model_info, "sources": sources, "top_n": options.top_n,
                    "similar_n": options.similar_n, "reference_time": bundle.info.get("reference_time"),
                    "customers": n_customers, "items": len(bundle.items), **(extra_metadata or {})}
        return writer.commit(metadata)


def _source(bundle: ModelBundle, role: str) -> str:
    return "trending" if role == "trending" else bundle.models[role].name


def _source_names(bundle: ModelBundle) -> list[str]:
    names = [_source(bundle, role) for role in bundle.models]
    return list(dict.fromkeys(names + ["rule"]))


def _batches(total: int, size: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, total, size):
        yield start, np.arange(start, min(total, start + size), dtype=np.int64)


def _history_values(bundle: ModelBundle, rows: np.ndarray, limit: int) -> list[bytes]:
    """Each customer's bought items, most often bought first, for 'exclude already bought' rules."""
    block = bundle.history[rows]
    values = []
    for i in range(len(rows)):
        start, end = block.indptr[i], block.indptr[i + 1]
        items, counts = block.indices[start:end], block.data[start:end]
        order = np.argsort(-counts, kind="stable")[:limit]
        values.append(np.asarray(items[order], dtype="<u4").tobytes())
    return values
