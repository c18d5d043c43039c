"""Beyond-accuracy metrics over id lists: catalog coverage, novelty and intra-list diversity at k.

Definitions follow Microsoft Recommenders (``recommenders/evaluation/python_evaluation.py``:
``catalog_coverage``, ``novelty``/``historical_item_novelty`` and ``diversity``), restated for ranked
id lists cut at k. Within one customer's top k a repeated item is taken once: Recommenders assumes
unique (customer, item) pairs, and a repeat is the same recommendation, not a second one. A missing
entry (``None``, NaN) names no item: it still takes a slot in the top k but is otherwise skipped.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.metrics.ranking import EmptyEvaluationError, _as_list, _check_k, _is_missing


def catalog_coverage_at_k(recommended: Sequence[Sequence[Hashable]], catalog_size: int, k: int = 10) -> float:
    """Distinct items across all top-k lists divided by ``catalog_size``.

    Recommenders takes the catalog to be the distinct items of the training data; pass that count (or
    the full assortment size) as ``catalog_size``. Items outside the catalog are not detected here, so
    the result exceeds 1 only when the caller's catalog size is wrong.
    """
    _check_k(k)
    if catalog_size <= 0:
        raise ValueError(f"catalog_size must be positive, got {catalog_size!r}")
    distinct = set()
    for u, items in enumerate(recommended):
        distinct.update(_top_items(items, u, k))
    return len(distinct) / catalog_size


def _top_items(items: Sequence[Hashable], position: int, k: int) -> list[Hashable]:
    """The distinct items of a top k, in rank order, without missing entries."""
    return list(dict.fromkeys(i for i in _as_list(items, position)[:k] if not _is_missing(i)))


def item_choice_probability(
    customer_ids: Iterable[Hashable],
    item_ids: Iterable[Hashable],
    denominator: Literal["interactions", "customers"] = "interactions",
) -> dict[Hashable, float]:
    """p(i) for novelty from aligned (customer, item) interaction arrays; repeated pairs count once.

    ``"interactions"`` (default) is Recommenders' ``historical_item_novelty``, Castells et al.'s item
    choice model: customers who interacted with i over all distinct (customer, item) pairs, so the
    probabilities sum to 1. ``"customers"`` is the share of customers who interacted with i, a
    discovery-style probability that does not sum to 1 and gives lower novelty values.
    """
    pairs = pd.DataFrame({"customer": list(customer_ids), "item": list(item_ids)}).drop_duplicates()
    if pairs.empty:
        raise ValueError("no interactions: item probabilities are undefined")
    counts = pairs.groupby("item", sort=False).size()
    if denominator == "interactions":
        total = len(pairs)
    elif denominator == "customers":
        total = pairs["customer"].nunique()
    else:
        raise ValueError(f"denominator must be 'interactions' or 'customers', got {denominator!r}")
    return {item: count / total for item, count in counts.items()}


def novelty_at_k(
    recommended: Sequence[Sequence[Hashable]],
    item_popularity: Mapping[Hashable, float],
    k: int = 10,
    *,
    total: float | None = None,
    unknown: Literal["raise", "skip"] = "raise",
) -> float:
    """Mean self-information -log2 p(i) over every recommended item in every top-k list.

    ``item_popularity`` maps item to p(i) in (0, 1] (see :func:`item_choice_probability`), or, when
    ``total`` is given, to a count that is divided by ``total``. As in Recommenders the mean is pooled
    over all recommendations, so a longer list weighs more than a shorter one.

    An item with no probability (never seen, p = 0 or NaN) has infinite self-information. ``unknown="raise"``
    reports such items; ``"skip"`` leaves them out of the mean. Recommenders instead drops them from the
    sum but keeps them in the count, scoring them 0, which rewards recommending unseen items the least.
    """
    _check_k(k)
    if unknown not in ("raise", "skip"):
        raise ValueError(f"unknown must be 'raise' or 'skip', got {unknown!r}")
    if total is not None and total <= 0:
        raise ValueError(f"total must be positive, got {total!r}")
    scale = 1.0 if total is None else float(total)

    probabilities, missing = [], set()
    for u, items in enumerate(recommended):
        for item in _top_items(items, u, k):
            p = item_popularity.get(item, 0.0)
            p = 0.0 if _is_missing(p) else p / scale
            # Written so that NaN fails too: an undefined probability is as unknown as an absent one.
            if not p > 0.0:
                missing.add(item)
                continue
            if p > 1.0:
                raise ValueError(f"p({item!r}) = {p} exceeds 1: pass total= when item_popularity holds counts")
            probabilities.append(p)
    if missing and unknown == "raise":
        shown = sorted(map(repr, missing))[:5]
        raise ValueError(
            f"{len(missing)} recommended items have no popularity (e.g. {', '.join(shown)}); "
            "their novelty is infinite. Pass unknown='skip' to leave them out"
        )
    if not probabilities:
        raise EmptyEvaluationError("no recommended item has a known popularity; novelty is undefined")
    return float(-np.log2(np.asarray(probabilities)).mean())


def intra_list_diversity_at_k(
    recommended: Sequence[Sequence[Hashable]],
    item_vectors: sp.spmatrix | sp.sparray | np.ndarray,
    item_index: Mapping[Hashable, int],
    k: int = 10,
) -> float:
    """Mean over customers of 1 - (mean cosine similarity over distinct item pairs in the top k).

    ``item_vectors`` has one row per item, found through ``item_index`` (item id -> row). With a binary
    item x customer matrix the cosine is co-buyers / sqrt(buyers_i * buyers_j), which is Recommenders'
    default ``item_cooccurrence_count`` similarity; with an item x feature matrix it is its
    ``item_feature_vector`` similarity. A row of zeros has similarity 0 to everything, as Recommenders'
    fill for pairs never seen together. (Recommenders 1.2.1 under pandas' copy-on-write skips that fill,
    so such pairs silently drop out of its mean; this follows the intended definition.) Lists with fewer
    than two distinct items have no pairs and are left out of the mean, as they are in Recommenders.
    """
    _check_k(k)
    matrix = sp.csr_matrix(item_vectors, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    unit_rows = sp.diags(inverse) @ matrix

    diversities = []
    for u, items in enumerate(recommended):
        distinct = _top_items(items, u, k)
        if len(distinct) < 2:
            continue
        try:
            rows = [item_index[item] for item in distinct]
        except KeyError as exc:
            raise KeyError(f"recommended[{u}] holds item {exc.args[0]!r}, which item_index lacks") from None
        sub = unit_rows[rows]
        gram = (sub @ sub.T).toarray()
        n = len(rows)
        mean_similarity = (gram.sum() - np.trace(gram)) / (n * (n - 1))
        diversities.append(1.0 - mean_similarity)
    if not diversities:
        raise EmptyEvaluationError("no list has two distinct items; intra-list diversity is undefined")
    return float(np.mean(diversities))
