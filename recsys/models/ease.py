"""Embarrassingly shallow autoencoder (Steck 2019): an item x item linear model in closed form."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from recsys.data.interactions import Interactions
from recsys.models.base import ModelFitError, Recommender, exclude_self, top_k


class EASERecommender(Recommender):
    """``B = I - P / diag(P)`` (column-wise) with ``P = (X'X + l2 I)^-1``, so ``diag(B) = 0``;
    a customer's scores are ``x B``.

    ``binary`` (Steck's setting) fits on bought / not bought instead of the interaction weights.
    The fit inverts a dense items x items matrix, O(items^3) time and 8 x items^2 bytes, so catalogues
    above ``max_items`` are refused rather than left to exhaust memory.
    """

    name = "ease"
    supports_similar_items = True

    def __init__(self, l2: float = 100.0, binary: bool = True, max_items: int = 20_000) -> None:
        super().__init__()
        if l2 <= 0:
            raise ValueError(f"l2 must be positive (it keeps X'X + l2 I invertible), got {l2}")
        self.l2 = l2
        self.binary = binary
        self.max_items = max_items
        self.weights: np.ndarray | None = None

    def fit(self, data: Interactions) -> EASERecommender:
        if data.n_items > self.max_items:
            raise ModelFitError(f"EASE needs a dense {data.n_items} x {data.n_items} inverse; the limit "
                                f"is max_items={self.max_items} (raise it if memory allows)")
        matrix = data.matrix.tocsr().astype(np.float64)
        if self.binary:
            matrix.data[:] = 1.0
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
        self._remember_seen(data)
        return self

    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        history = self._seen[np.asarray(customer_rows, dtype=np.int64)]
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
        return {"weights": self.weights}

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights = arrays["weights"]
