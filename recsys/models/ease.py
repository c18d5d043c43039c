"""Embarrassingly shallow autoencoder (Steck 2019): an item x item linear model in closed form."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recsys.data.interactions import Interactions, recency_weighted_matrix
from recsys.models.base import (
    ModelFitError,
    Recommender,
    arrays_to_sparse,
    exclude_self,
    sparse_to_arrays,
    top_k,
)


class EASERecommender(Recommender):
    """``B = I - P / diag(P)`` (column-wise) with ``P = (X'X + l2 I)^-1``, so ``diag(B) = 0``;
    a customer's scores are ``x B``.

    ``binary`` (Steck's setting) fits on bought / not bought instead of the interaction weights.
    ``recency_half_life_days`` weighs every purchase by ``0.5 ** (age in days / half-life)``, both in the
    fit and in a customer's history when scoring (binary: by the age of the latest purchase), so that
    this season's co-purchases and a customer's latest baskets count more than last year's.
    The fit inverts a dense items x items matrix, O(items^3) time and 8 x items^2 bytes, so catalogues
    above ``max_items`` are refused rather than left to exhaust memory.
    """

    name = "ease"
    supports_similar_items = True

    def __init__(self, l2: float = 100.0, binary: bool = True, recency_half_life_days: float | None = None,
                 max_items: int = 20_000) -> None:
        super().__init__()
        if l2 <= 0:
            raise ValueError(f"l2 must be positive (it keeps X'X + l2 I invertible), got {l2}")
        if recency_half_life_days is not None and not recency_half_life_days > 0:
            raise ValueError(f"recency_half_life_days must be positive or None, got {recency_half_life_days}")
        self.l2 = l2
        self.binary = binary
        self.recency_half_life_days = recency_half_life_days
        self.max_items = max_items
        self.weights: np.ndarray | None = None
        #: each customer's purchases as the fit weighed them, when that differs from the seen matrix
        self.history: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> EASERecommender:
        if data.n_items > self.max_items:
            raise ModelFitError(f"EASE needs a dense {data.n_items} x {data.n_items} inverse; the limit "
                                f"is max_items={self.max_items} (raise it if memory allows)")
        matrix = self._training_matrix(data)
        gram = (matrix.T @ matrix).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        try:
            precision = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError as exc:
            raise ModelFitError(f"EASE could not invert X'X + l2 I: {exc}") from exc
        weights = -precision / np.diag(precision)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        # inv() hands back Fortran order; scoring multiplies sparse rows into it, which wants C order
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.history = matrix.astype(np.float32) if self.recency_half_life_days is not None else None
        self._remember_seen(data)
        return self

    def _training_matrix(self, data: Interactions) -> sp.csr_matrix:
        if self.recency_half_life_days is not None:
            weighed = replace(data, weighting="binary") if self.binary else data
            return recency_weighted_matrix(weighed, self.recency_half_life_days).astype(np.float64)
        matrix = data.matrix.tocsr().astype(np.float64)
        if self.binary:
            matrix.data[:] = 1.0
        return matrix

    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        rows = np.asarray(customer_rows, dtype=np.int64)
        if self.history is not None:
            return np.asarray(self.history[rows] @ self.weights)
        history = self._seen[rows]
        if self.binary:
            history = history.copy()
            history.data[:] = 1.0
        return np.asarray(history @ self.weights)

    def _ranking_scores(self, customer_rows: np.ndarray) -> np.ndarray:
        """:meth:`score` without the items scoring exactly 0: no item the customer bought has a
        co-purchase weight to them (a sum of float products is not 0 by chance), so a customer without
        evidence gets a short list for the fallback chain to fill, not catalogue rows in order.
        :meth:`score` keeps the zeros, which the ranker learns from."""
        scores = self.score(customer_rows).astype(np.float32)
        scores[scores == 0] = -np.inf
        return scores

    def similar_items(self, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # column j of B ranks items by -P_ij, which is symmetric in i and j, whereas row j mixes in
        # every other item's 1 / P_ii scale
        item_rows = self._check_item_rows(item_rows)
        weights = exclude_self(self.weights[:, item_rows].T.copy(), item_rows)
        # a weight of exactly 0 means no co-purchase evidence (an item only ever bought alone has a zero
        # column): -inf, so that the list stays short and serving fills it, rather than rows in catalogue order
        weights[weights == 0] = -np.inf
        return top_k(weights, k)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"weights": self.weights}
        if self.history is not None:
            arrays.update(sparse_to_arrays("history", self.history))
        return arrays

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights = arrays["weights"]
        self.history = arrays_to_sparse(arrays, "history") if "history_data" in arrays else None
