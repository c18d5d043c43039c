"""Candidate generation for a two-stage ranker: the union of several recommenders' top lists.

Each generator is a registry model; for every customer the candidates are the union of each
generator's top ``n`` items, and every candidate carries each generator's score and rank (rank 1 =
that generator's best item, NaN score and rank when the generator has no evidence for it), so the
re-ranker sees how strongly each source backs an item even when the item came from another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.models.base import Recommender, mask_seen


@dataclass(frozen=True)
class Candidates:
    """Aligned arrays, one entry per (customer, item) candidate, grouped by customer in input order."""

    customers: np.ndarray
    items: np.ndarray
    #: (n_candidates, 2 * n_generators): score of each generator, then rank of each generator
    features: np.ndarray


def generator_feature_names(names: list[str]) -> tuple[str, ...]:
    return tuple(f"{name}_score" for name in names) + tuple(f"{name}_rank" for name in names)


def make_generators(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Recommender]:
    """Unfitted registry models, one per ``{model name: params}`` entry, in sorted name order."""
    # imported here: the registry lists the ranker, which builds its generators through the registry
    from recsys.models.registry import create_model

    return {name: create_model(name, **dict(specs[name])) for name in sorted(specs)}


def generate_candidates(
    generators: Mapping[str, Recommender],
    customer_rows: np.ndarray,
    n: int,
    *,
    exclude_seen: bool,
    seen,
    batch_size: int = 512,
) -> Candidates:
    """The union of every generator's top ``n`` for each customer row, with scores and ranks.

    With ``exclude_seen`` the customer's ``seen`` items (CSR, customers x items) are neither
    candidates nor counted in the ranks.
    """
    customers, items, features = [], [], []
    for start in range(0, len(customer_rows), batch_size):
        rows = customer_rows[start:start + batch_size]
        dense = []
        for model in generators.values():
            scores = np.asarray(model.score(rows), dtype=np.float32)
            if exclude_seen:
                scores = scores.copy()
                mask_seen(scores, seen[rows])
            dense.append(scores)
        chosen = np.zeros(dense[0].shape, dtype=bool)
        ranks = []
        for scores in dense:
            finite = np.isfinite(scores)
            # rank 1 is the best; ties keep the lower item row first, as top_k does
            order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)
            rank = np.empty_like(order)
            np.put_along_axis(rank, order, np.arange(1, scores.shape[1] + 1)[None, :].repeat(len(rows), 0), axis=1)
            chosen |= (rank <= n) & finite
            ranks.append(np.where(finite, rank, np.nan))
        local, item = np.nonzero(chosen)
        customers.append(rows[local])
        items.append(item)
        score_columns = [np.where(np.isfinite(s[local, item]), s[local, item], np.nan) for s in dense]
        rank_columns = [r[local, item] for r in ranks]
        features.append(np.column_stack(score_columns + rank_columns).astype(np.float32))
    if not customers:
        return Candidates(np.zeros(0, np.int64), np.zeros(0, np.int64),
                          np.zeros((0, 2 * len(generators)), np.float32))
    return Candidates(np.concatenate(customers).astype(np.int64), np.concatenate(items).astype(np.int64),
                      np.concatenate(features))
