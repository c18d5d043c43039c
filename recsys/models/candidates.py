"""Candidate generation for a two-stage ranker: the union of several recommenders' top lists.

Each generator is a registry model, named either by its registry name or by an alias of
:data:`GENERATOR_ALIASES` (one model with preset parameters, so that two variants of the same model,
say weighted and binary EASE, can serve side by side). For every customer the candidates are the
union of each generator's top ``n`` items, and every candidate carries each generator's score and
rank (rank 1 = that generator's best item, NaN score and rank when the generator has no evidence for
it), so the re-ranker sees how strongly each source backs an item even when the item came from another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.models.base import Recommender, mask_seen

#: generator name -> (registry model, preset parameters); a spec's own parameters override the presets
GENERATOR_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "ease_binary": ("ease", {"binary": True, "l2": 500.0}),
    "ease_recent": ("ease", {"binary": False, "l2": 30.0, "recency_half_life_days": 60.0}),
    "ease_weighted": ("ease", {"binary": False, "l2": 100.0}),
    "item_knn_bm25": ("item_knn", {"similarity": "bm25"}),
    "item_knn_cosine": ("item_knn", {"similarity": "cosine"}),
    "trending": ("popularity", {"window_days": 30}),
}


@dataclass(frozen=True)
class Candidates:
    """Aligned arrays, one entry per (customer, item) candidate, grouped by customer in input order."""

    customers: np.ndarray
    items: np.ndarray
    #: (n_candidates, 2 * n_generators): score of each generator, then rank of each generator
    features: np.ndarray


def generator_feature_names(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{name}_score" for name in names) + tuple(f"{name}_rank" for name in names)


def resolve_generator(name: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The registry model and parameters behind generator ``name``."""
    model, preset = GENERATOR_ALIASES.get(name, (name, {}))
    return model, {**preset, **dict(params)}


def make_generators(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Recommender]:
    """Unfitted registry models, one per ``{generator name: params}`` entry, in sorted name order."""
    # imported here: the registry lists the ranker, which builds its generators through the registry
    from recsys.models.registry import create_model

    generators = {}
    for name in sorted(specs):
        model, params = resolve_generator(name, specs[name])
        generators[name] = create_model(model, **params)
    return generators


def generate_candidates(
    generators: Mapping[str, Recommender],
    customer_rows: np.ndarray,
    n: int | Mapping[str, int],
    *,
    exclude_seen: bool,
    seen,
    batch_size: int = 1024,
) -> Candidates:
    """The union of every generator's top ``n`` for each customer row, with scores and ranks.

    ``n`` is one size for all generators or a size per generator name. With ``exclude_seen`` the
    customer's ``seen`` items (CSR, customers x items) are neither candidates nor counted in the ranks.
    """
    sizes = [n.get(name, 0) if isinstance(n, Mapping) else n for name in generators]
    parts = []
    for start in range(0, len(customer_rows), batch_size):
        rows = customer_rows[start:start + batch_size]
        dense = [np.asarray(model.score(rows), dtype=np.float32) for model in generators.values()]
        parts.append(candidates_from_scores(rows, dense, sizes, seen[rows] if exclude_seen else None))
    if not parts:
        return Candidates(np.zeros(0, np.int64), np.zeros(0, np.int64),
                          np.zeros((0, 2 * len(generators)), np.float32))
    return Candidates(np.concatenate([p.customers for p in parts]), np.concatenate([p.items for p in parts]),
                      np.concatenate([p.features for p in parts]))


def candidates_from_scores(rows: np.ndarray, dense: Sequence[np.ndarray], sizes: Sequence[int],
                           seen=None) -> Candidates:
    """Candidates of ``rows`` from each generator's dense scores (one ``(len(rows), n_items)`` array
    per generator): the union of generator ``g``'s top ``sizes[g]``; ``seen`` (CSR, one row per
    entry of ``rows``) items are dropped before ranking when given."""
    n_rows, n_items = dense[0].shape
    chosen = np.zeros((n_rows, n_items), dtype=bool)
    ranks = []
    positions = np.broadcast_to(np.arange(1, n_items + 1, dtype=np.float32), (n_rows, n_items))
    local_rows = np.arange(n_rows)[:, None]
    if seen is not None:
        dense = [s.copy() for s in dense]
        for scores in dense:
            mask_seen(scores, seen)
    for size, scores in zip(sizes, dense, strict=True):
        finite = np.isfinite(scores)
        # rank 1 is the best; a stable sort keeps the lower item row first among ties, as top_k does
        order = np.argsort(-scores, axis=1, kind="stable")
        rank = np.empty((n_rows, n_items), dtype=np.float32)
        rank[local_rows, order] = positions
        if size > 0:
            chosen |= (rank <= size) & finite
        rank[~finite] = np.nan
        ranks.append(rank)
    local, item = np.nonzero(chosen)
    columns = [np.where(np.isfinite(s[local, item]), s[local, item], np.nan) for s in dense]
    columns += [r[local, item] for r in ranks]
    return Candidates(rows[local].astype(np.int64), item.astype(np.int64),
                      np.column_stack(columns).astype(np.float32))
