"""The same best-sellers list for everyone: all-time, or trending within a recent window."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data import schema
from recsys.data.interactions import Interactions
from recsys.models.base import Recommender, check_k

POPULARITY_BY = ("customers", "orders")


class PopularityRecommender(Recommender):
    """Items ranked by how many distinct customers (or orders) bought them.

    With ``window_days`` only purchases in ``(reference_time - window_days, reference_time]`` count,
    which turns best-sellers into "trending". Items nobody bought in the window score ``-inf``:
    they are not popular, and callers should fill from a longer window instead.
    """

    name = "popularity"

    def __init__(self, window_days: int | None = None, by: str = "customers") -> None:
        super().__init__()
        if window_days is not None and window_days <= 0:
            raise ValueError(f"window_days must be positive or None, got {window_days}")
        if by not in POPULARITY_BY:
            raise ValueError(f"by={by!r} is not one of {', '.join(POPULARITY_BY)}")
        self.window_days = window_days
        self.by = by
        self.counts: np.ndarray | None = None

    def fit(self, data: Interactions) -> PopularityRecommender:
        frame = data.transactions
        if self.window_days is not None:
            if schema.TIMESTAMP not in frame:
                raise ValueError("a popularity window needs transactions with a timestamp column")
            start = data.reference_time - pd.Timedelta(days=self.window_days)
            stamps = frame[schema.TIMESTAMP]
            frame = frame[(stamps > start) & (stamps <= data.reference_time)]
        key = "customer_idx" if self.by == "customers" else schema.ORDER_ID
        pairs = frame[["item_idx", key]].drop_duplicates()
        counts = np.bincount(pairs["item_idx"].to_numpy(np.int64), minlength=data.n_items)
        self.counts = counts.astype(np.float32)
        self._remember_seen(data)
        return self

    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.tile(self._item_scores(), (len(customer_rows), 1))

    def recommend(
        self, customer_rows: np.ndarray, k: int, *, exclude_seen: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        # One global ranking serves everyone; a customer can only displace the few items they bought,
        # so the k + (most items any of them bought) best cover every list without dense scores.
        self._check_fitted()
        customer_rows = self._check_customer_rows(customer_rows)
        check_k(k)
        scores = self._item_scores()
        ranked = np.lexsort((np.arange(len(scores)), -scores))
        ranked = ranked[np.isfinite(scores[ranked])]
        n = len(customer_rows)
        item_rows = np.full((n, k), -1, dtype=np.int64)
        item_scores = np.full((n, k), -np.inf, dtype=np.float32)
        for batch in self._batches(n):
            seen = self._seen[customer_rows[batch]]
            extra = int(np.diff(seen.indptr).max(initial=0)) if exclude_seen else 0
            candidates = ranked[: k + extra]
            blocked = np.zeros((seen.shape[0], len(candidates)), dtype=bool)
            if exclude_seen and len(candidates):
                # every stored entry is a purchase, whatever its weight (a net quantity of 0 included),
                # as in mask_seen
                bought = seen.copy()
                bought.data[:] = 1
                blocked = bought[:, candidates].toarray() != 0
            # stable sort keeps the popularity order among allowed candidates
            take = np.argsort(blocked, axis=1, kind="stable")[:, :k]
            width = take.shape[1]
            chosen = np.where(np.take_along_axis(blocked, take, axis=1), -1, candidates[take])
            item_rows[batch, :width] = chosen
            item_scores[batch, :width] = np.where(chosen >= 0, scores[np.maximum(chosen, 0)], -np.inf)
        return item_rows, item_scores

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts = arrays["counts"]

    def _item_scores(self) -> np.ndarray:
        return np.where(self.counts > 0, self.counts, -np.inf).astype(np.float32)
