"""Buy it again: each customer's own past items, ranked by how often and how recently they bought them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.data import schema
from recsys.data.interactions import Interactions, days_before
from recsys.models.base import Recommender, arrays_to_sparse, sparse_scores, sparse_to_arrays


class RepeatBuyRecommender(Recommender):
    """Scores ``orders ** frequency_weight * 0.5 ** (days_since_last / recency_half_life_days)``.

    ``orders`` counts the distinct orders in which the customer bought the item; ``days_since_last`` is
    measured back from ``reference_time``. Scores are kept as their natural logarithm, which ranks the
    same and does not underflow for purchases many half-lives old. Items the customer never bought
    score ``-inf``, so callers fill the rest of a list from another model. ``recency_half_life_days=None``
    ranks by frequency alone; ``frequency_weight=0`` by recency alone.
    """

    name = "repeat_buy"

    def __init__(self, recency_half_life_days: float | None = 30.0, frequency_weight: float = 1.0) -> None:
        super().__init__()
        if recency_half_life_days is not None and recency_half_life_days <= 0:
            raise ValueError(f"recency_half_life_days must be positive or None, got {recency_half_life_days}")
        if frequency_weight < 0:
            raise ValueError(f"frequency_weight must be >= 0, got {frequency_weight}")
        self.recency_half_life_days = recency_half_life_days
        self.frequency_weight = frequency_weight
        self.log_scores: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> RepeatBuyRecommender:
        columns = ["customer_idx", "item_idx", schema.ORDER_ID, schema.TIMESTAMP]
        missing = [c for c in columns if c not in data.transactions]
        if missing:
            raise ValueError(f"repeat-buy needs transaction column(s) {missing}")
        pairs = (
            data.transactions[columns]
            .groupby(["customer_idx", "item_idx"], sort=True)
            .agg(orders=(schema.ORDER_ID, "nunique"), last=(schema.TIMESTAMP, "max"))
            .reset_index()
        )
        log_score = self.frequency_weight * np.log(pairs["orders"].to_numpy(np.float64))
        if self.recency_half_life_days is not None:
            age_days = days_before(data.reference_time, pairs["last"])
            log_score -= np.log(2.0) * np.clip(age_days, 0.0, None) / self.recency_half_life_days
        # built from indptr rather than coordinates so that scores of exactly 0 stay stored entries
        customer_counts = np.bincount(pairs["customer_idx"].to_numpy(np.int64), minlength=data.n_customers)
        indptr = np.concatenate([[0], np.cumsum(customer_counts)])
        self.log_scores = sp.csr_matrix(
            (log_score.astype(np.float32), pairs["item_idx"].to_numpy(np.int32), indptr),
            shape=(data.n_customers, data.n_items),
        )
        self._remember_seen(data)
        return self

    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return sparse_scores(self.log_scores[np.asarray(customer_rows, dtype=np.int64)])

    def state_arrays(self) -> dict[str, np.ndarray]:
        return sparse_to_arrays("log_scores", self.log_scores)

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.log_scores = arrays_to_sparse(arrays, "log_scores")
