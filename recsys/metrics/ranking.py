"""Ranking metrics over id lists: precision, recall, nDCG, MAP, hit rate and MRR at k.

Inputs are plain ids, aligned by position: ``recommended[u]`` is customer ``u``'s ranked list (best first)
and ``relevant[u]`` the set of items that customer actually interacted with in the test window. Every
metric is the mean over customers of a per-customer score.

Definitions follow Microsoft Recommenders (``recommenders/evaluation/python_evaluation.py``) with
``relevancy_method="top_k"`` and binary relevance, for a customer with relevant set R and hits in the top k:

* precision@k = hits / k. The denominator stays k when fewer than k items were recommended, as in
  Recommenders and Spark, so a short list caps the achievable precision below 1.
* recall@k = hits / |R|.
* nDCG@k = DCG / IDCG with DCG = sum over hit ranks r of 1 / log2(r + 1) and IDCG the same sum over ranks
  1..min(k, |R|). Recommenders defaults to a natural-log discount; the base cancels in the ratio, so the
  value is identical.
* MAP@k = (sum over hit ranks r of hits-up-to-r / r) / min(k, |R|): the ``map_at_k`` of Recommenders
  1.2 and later, not its ``map``, which divides by |R| and so cannot reach 1 when |R| > k.
* hit_rate@k = 1 if there is at least one hit, else 0.
* mrr@k = 1 / rank of the first hit, 0 when there is none (not in Recommenders' pandas evaluator).

Choices where Recommenders is silent or leans on its data-frame joins:

* Customers whose relevant set is empty are excluded from every mean; ``n_excluded`` on
  :class:`RankingScores` (and ``"n_excluded"`` in :func:`evaluate_rankings`) reports how many. A customer
  with relevant items but an empty recommended list is kept and scores 0, where Recommenders' inner join
  would silently drop them from precision, recall and MAP (its nDCG keeps them).
* An item repeated within a list counts as a hit at its first position only; the repeat still takes a
  slot. Recommenders assumes no duplicates; this keeps every metric within [0, 1] and penalises repeats.
* A missing entry (``None``, NaN) names no item: in a list it takes a slot and is a miss, in a relevant
  set it is dropped before |R| is counted (a set holding only missing entries is empty).
* When every customer is excluded there is nothing to average: :class:`EmptyEvaluationError` is raised.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


class EmptyEvaluationError(ValueError):
    """Raised when no customer has a relevant item, so every ranking metric is undefined."""


@dataclass(frozen=True)
class RankingScores:
    """Per-customer scores at one k for the customers that were kept (non-empty relevant set).

    ``kept`` holds the positions (into the input sequences) of those customers, in input order; every
    score array is aligned with it.
    """

    k: int
    kept: np.ndarray
    n_excluded: int
    precision: np.ndarray
    recall: np.ndarray
    ndcg: np.ndarray
    map: np.ndarray
    hit_rate: np.ndarray
    mrr: np.ndarray

    @property
    def n_customers(self) -> int:
        return int(self.kept.size)

    def mean(self, metric: str) -> float:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
        if self.n_customers == 0:
            raise EmptyEvaluationError(
                f"all {self.n_excluded} customers have an empty relevant set; {metric}@{self.k} is undefined"
            )
        return float(getattr(self, metric).mean())


def hit_matrix(
    recommended: Sequence[Sequence[Hashable]], relevant: Sequence[Collection[Hashable]], k: int
) -> np.ndarray:
    """A boolean (n_customers, k) matrix: entry [u, r] says the item at rank r + 1 of u's list is a hit.

    Positions past the end of a short list are misses, and so is any repeat of an item already seen
    higher in the same list, and a missing entry (``None``, NaN), which names no item. Built with one
    vectorised membership test over (customer, item) codes.
    """
    _check_aligned(recommended, relevant)
    _check_k(k)
    n = len(recommended)
    rows, cols, rec_items = [], [], []
    for u, items in enumerate(recommended):
        top = _as_list(items, u)[:k]
        rows.extend([u] * len(top))
        cols.extend(range(len(top)))
        rec_items.extend(top)
    rel_rows, rel_items = [], []
    for u, items in enumerate(relevant):
        rel = list(items)
        rel_rows.extend([u] * len(rel))
        rel_items.extend(rel)

    hits = np.zeros((n, k), dtype=bool)
    if not rec_items or not rel_items:
        return hits
    codes, _ = pd.factorize(pd.Series(rec_items + rel_items, dtype=object))
    # factorize codes a missing value -1, whose key would be the previous customer's last code
    n_codes = int(codes.max()) + 2
    codes = codes + 1
    rec_codes, rel_codes = codes[: len(rec_items)], codes[len(rec_items) :]
    rec_rows = np.asarray(rows, dtype=np.int64)
    rec_keys = rec_rows * n_codes + rec_codes
    rel_keys = (np.asarray(rel_rows, dtype=np.int64) * n_codes + rel_codes)[rel_codes > 0]
    first = ~pd.Series(rec_keys).duplicated().to_numpy()
    is_hit = np.isin(rec_keys, rel_keys) & first & (rec_codes > 0)
    hits[rec_rows[is_hit], np.asarray(cols, dtype=np.int64)[is_hit]] = True
    return hits


def ranking_scores(
    recommended: Sequence[Sequence[Hashable]], relevant: Sequence[Collection[Hashable]], k: int
) -> RankingScores:
    """Every metric's per-customer score at ``k``; the public ``*_at_k`` functions average these."""
    hits = hit_matrix(recommended, relevant, k)
    return _scores_from_hits(hits, _n_relevant(relevant), k)


def _n_relevant(relevant: Sequence[Collection[Hashable]]) -> np.ndarray:
    return np.fromiter((len({i for i in items if not _is_missing(i)}) for items in relevant), dtype=np.int64,
                       count=len(relevant))


def _scores_from_hits(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> RankingScores:
    kept = np.flatnonzero(n_relevant > 0)
    hits = hits[kept, :k]
    n_rel = n_relevant[kept].astype(np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)

    n_hits = hits.sum(axis=1).astype(np.float64)
    discounts = 1.0 / np.log2(ranks + 1.0)
    dcg = (hits * discounts).sum(axis=1)
    ideal_cut = np.minimum(n_rel, k).astype(np.int64)
    idcg = np.concatenate(([0.0], np.cumsum(discounts)))[ideal_cut]
    precision_at_hit = np.cumsum(hits, axis=1) / ranks
    average_precision = (precision_at_hit * hits).sum(axis=1) / np.minimum(n_rel, k)
    any_hit = hits.any(axis=1)
    first_rank = np.argmax(hits, axis=1) + 1.0
    return RankingScores(
        k=k,
        kept=kept,
        n_excluded=int(n_relevant.size - kept.size),
        precision=n_hits / k,
        recall=n_hits / n_rel,
        ndcg=dcg / idcg,
        map=average_precision,
        hit_rate=any_hit.astype(np.float64),
        mrr=np.where(any_hit, 1.0 / first_rank, 0.0),
    )


def precision_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean over customers of hits in the top k divided by k."""
    return ranking_scores(recommended, relevant, k).mean("precision")


def recall_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean over customers of hits in the top k divided by the number of relevant items."""
    return ranking_scores(recommended, relevant, k).mean("recall")


def ndcg_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean over customers of binary-gain DCG@k over the ideal DCG of min(k, |relevant|) hits."""
    return ranking_scores(recommended, relevant, k).mean("ndcg")


def map_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean over customers of average precision at k, normalised by min(k, |relevant|)."""
    return ranking_scores(recommended, relevant, k).mean("map")


def hit_rate_at_k(recommended, relevant, k: int = 10) -> float:
    """Share of customers with at least one relevant item in their top k."""
    return ranking_scores(recommended, relevant, k).mean("hit_rate")


def mrr_at_k(recommended, relevant, k: int = 10) -> float:
    """Mean over customers of the reciprocal rank of the first hit in the top k (0 when none)."""
    return ranking_scores(recommended, relevant, k).mean("mrr")


def evaluate_rankings(
    recommended: Sequence[Sequence[Hashable]],
    relevant: Sequence[Collection[Hashable]],
    ks: Iterable[int] = (10, 20),
    metrics: Iterable[str] = METRICS,
) -> dict[str, float]:
    """Every requested metric at every k, keyed ``"<metric>@<k>"``, plus ``n_customers``/``n_excluded``.

    The hit matrix is built once at the largest k and sliced for the smaller ones.
    """
    ks = list(ks)
    for k in ks:
        _check_k(k)
    ks = sorted({int(k) for k in ks})
    metrics = tuple(metrics)
    if not ks:
        raise ValueError("ks is empty: name at least one cut-off")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; expected a subset of {METRICS}")
    hits = hit_matrix(recommended, relevant, ks[-1])
    n_relevant = _n_relevant(relevant)
    result: dict[str, float] = {}
    for k in ks:
        scores = _scores_from_hits(hits, n_relevant, k)
        for metric in metrics:
            result[f"{metric}@{k}"] = scores.mean(metric)
    result["n_customers"] = scores.n_customers
    result["n_excluded"] = scores.n_excluded
    return result


def _as_list(items: Sequence[Hashable], position: int) -> list[Hashable]:
    # A bare string is a Sequence too; taking it as a list of characters would silently score nonsense.
    if isinstance(items, str | bytes):
        raise TypeError(f"recommended[{position}] is a string, expected a sequence of item ids")
    return list(items)


def _is_missing(item: Hashable) -> bool:
    # Only a scalar can be missing: pd.isna of a tuple id would answer element by element.
    return pd.api.types.is_scalar(item) and bool(pd.isna(item))


def _check_aligned(recommended: Sequence, relevant: Sequence) -> None:
    if len(recommended) != len(relevant):
        raise ValueError(
            f"recommended has {len(recommended)} lists but relevant has {len(relevant)} sets; "
            "they must be aligned one per customer"
        )


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
