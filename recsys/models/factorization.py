"""What ALS and BPR share once fitted: customer and item factors, scored by dot product."""

from __future__ import annotations

import numpy as np
from implicit.cpu.topk import topk
from threadpoolctl import threadpool_limits

from recsys.models.base import Recommender, check_k, exclude_self, mask_seen, top_k

# implicit's topk marks filtered-out slots with the lowest float32 rather than -inf
_FILTERED = -np.finfo(np.float32).max


class FactorizationRecommender(Recommender):
    """Scores are ``user_factors[customer] . item_factors[item]``; similar items are cosine neighbours
    in item-factor space. Subclasses fit the factors and set ``num_threads``."""

    supports_similar_items = True
    num_threads: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.user_factors[np.asarray(customer_rows, dtype=np.int64)] @ self.item_factors.T

    def recommend(
        self, customer_rows: np.ndarray, k: int, *, exclude_seen: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        # implicit's multithreaded top-k never materialises the dense scores; batches bound what it
        # allocates for the filter rows and the results
        self._check_fitted()
        customer_rows = self._check_customer_rows(customer_rows)
        check_k(k)
        n = len(customer_rows)
        width = min(k, self.n_items)
        # one more than asked: a tie across the cut shows as equal scores on either side of it
        probe = min(k + 1, self.n_items)
        item_rows = np.full((n, k), -1, dtype=np.int64)
        item_scores = np.full((n, k), -np.inf, dtype=np.float32)
        # implicit's topk runs its own threads over BLAS calls; threaded BLAS beneath them oversubscribes
        # the cores (measured 2-3x slower on two cores). Limited once: each limit reads the loaded
        # libraries anew, a fifth of the time of a batch.
        with threadpool_limits(1, "blas"):
            for batch in self._batches(n):
                self._top_batch(customer_rows[batch], probe, width, exclude_seen, item_rows[batch],
                                item_scores[batch])
        return item_rows, item_scores

    def _top_batch(self, rows: np.ndarray, probe: int, width: int, exclude_seen: bool, item_rows: np.ndarray,
                   item_scores: np.ndarray) -> None:
        """Fills ``item_rows`` and ``item_scores`` (views of one batch) with the top ``width`` of ``rows``."""
        ids, scores = topk(
            self.item_factors,
            self.user_factors[rows],
            probe,
            filter_query_items=self._seen[rows] if exclude_seen else None,
            num_threads=self.num_threads,
        )
        scores = np.where(scores <= _FILTERED, -np.inf, scores).astype(np.float32)
        # implicit orders ties as it likes; the contract is lower item rows first, as top_k does
        order = np.lexsort((ids, -scores), axis=1)
        ids, scores = np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)
        item_rows[:, :width] = np.where(np.isneginf(scores[:, :width]), -1, ids[:, :width])
        item_scores[:, :width] = scores[:, :width]
        if probe > width:
            self._redo_ties_at_the_cut(rows, scores, width, exclude_seen, item_rows, item_scores)

    def _redo_ties_at_the_cut(self, rows: np.ndarray, scores: np.ndarray, width: int, exclude_seen: bool,
                              item_rows: np.ndarray, item_scores: np.ndarray) -> None:
        """Rows whose last kept score ties the first dropped one (items without factors all score 0)
        are ranked again from their dense scores, so the tied items kept are the lowest rows."""
        tied = np.flatnonzero(np.isfinite(scores[:, width - 1]) & (scores[:, width - 1] == scores[:, width]))
        if not len(tied):
            return
        dense = self.score(rows[tied]).astype(np.float32)
        if exclude_seen:
            mask_seen(dense, self._seen[rows[tied]])
        item_rows[tied, :width], item_scores[tied, :width] = top_k(dense, width)

    def similar_items(self, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        item_rows = self._check_item_rows(item_rows)
        norms = np.linalg.norm(self.item_factors, axis=1)
        unit = self.item_factors / np.where(norms > 0, norms, 1.0)[:, None]
        # an item without factors (never bought) is like nothing and nothing is like it: -inf, not a
        # cosine of 0 that would rank it above real items with a negative one
        no_factors = norms == 0
        item_ids = np.full((len(item_rows), k), -1, dtype=np.int64)
        item_scores = np.full((len(item_rows), k), -np.inf, dtype=np.float32)
        for batch in self._batches(len(item_rows)):
            rows = item_rows[batch]
            cosine = exclude_self(unit[rows] @ unit.T, rows)
            cosine[:, no_factors] = -np.inf
            cosine[no_factors[rows]] = -np.inf
            item_ids[batch], item_scores[batch] = top_k(cosine, k)
        return item_ids, item_scores

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors = arrays["user_factors"]
        self.item_factors = arrays["item_factors"]


def check_counts(**counts: object) -> None:
    """Each of ``counts`` (factors, iterations) must be an integer >= 1: implicit would fail on 16.5 only
    once fitting, after the data were loaded."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
