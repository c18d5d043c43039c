"""Item-to-item nearest neighbours from co-purchases ("customers who bought this also bought")."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.data.interactions import Interactions
from recsys.models.base import arrays_to_sparse, sparse_scores, sparse_to_arrays, top_k
from recsys.models.neighbours import NeighbourRecommender


class ItemKNNRecommender(NeighbourRecommender):
    """Each item keeps its ``neighbours`` most similar items; a customer's score for an item is the
    sum, over the items they bought, of interaction weight x similarity.

    ``cosine`` compares items by the customers who bought them; ``bm25`` first weights the item x
    customer matrix with BM25 (``bm25_k1`` saturates repeat purchases, ``bm25_b`` normalises for how
    many buyers an item has), which damps the pull of best-sellers. Items with no similarity path to a
    customer's history score ``-inf`` rather than 0: there is no evidence for them.
    """

    name = "item_knn"
    supports_similar_items = True

    item_similarity: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> ItemKNNRecommender:
        self.item_similarity = self._nearest(data.matrix.T)
        self._remember_seen(data)
        return self

    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        history = self._seen[np.asarray(customer_rows, dtype=np.int64)]
        return sparse_scores(history @ self.item_similarity)

    def similar_items(self, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        item_rows = self._check_item_rows(item_rows)
        return top_k(sparse_scores(self.item_similarity[item_rows]), k)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return sparse_to_arrays("item_similarity", self.item_similarity)

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_similarity = arrays_to_sparse(arrays, "item_similarity")

