"""What ALS and BPR share once fitted: customer and item factors, scored by dot product."""

from __future__ import annotations

import numpy as np
from implicit.cpu.topk import topk
from threadpoolctl import threadpool_limits

from recsys.models.base import Recommender, check_k, exclude_self, top_k

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
        item_rows = np.full((n, k), -1, dtype=np.int64)
        item_scores = np.full((n, k), -np.inf, dtype=np.float32)
        for batch in self._batches(n):
            rows = customer_rows[batch]
            # implicit's topk runs its own threads over BLAS calls; threaded BLAS beneath them
            # oversubscribes the cores (measured 2-3x slower on two cores)
            with threadpool_limits(1, "blas"):
                ids, scores = topk(
                    self.item_factors,
                    self.user_factors[rows],
                    width,
                    filter_query_items=self._seen[rows] if exclude_seen else None,
                    num_threads=self.num_threads,
                )
            filtered = scores <= _FILTERED
            item_rows[batch, :width] = np.where(filtered, -1, ids)
            item_scores[batch, :width] = np.where(filtered, -np.inf, scores)
        return item_rows, item_scores

    def similar_items(self, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        item_rows = self._check_item_rows(item_rows)
        norms = np.linalg.norm(self.item_factors, axis=1)
        unit = self.item_factors / np.where(norms > 0, norms, 1.0)[:, None]
        item_ids = np.full((len(item_rows), k), -1, dtype=np.int64)
        item_scores = np.full((len(item_rows), k), -np.inf, dtype=np.float32)
        for batch in self._batches(len(item_rows)):
            rows = item_rows[batch]
            cosine = exclude_self(unit[rows] @ unit.T, rows)
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
