"""Item-to-item nearest neighbours from co-purchases ("customers who bought this also bought")."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import all_pairs_knn, bm25_weight, normalize

from recsys.data.interactions import Interactions
from recsys.models.base import Recommender, arrays_to_sparse, sparse_scores, sparse_to_arrays, top_k

SIMILARITIES = ("cosine", "bm25")


class ItemKNNRecommender(Recommender):
    """Each item keeps its ``neighbours`` most similar items; a customer's score for an item is the
    sum, over the items they bought, of interaction weight x similarity.

    ``cosine`` compares items by the customers who bought them; ``bm25`` first weights the item x
    customer matrix with BM25 (``bm25_k1`` saturates repeat purchases, ``bm25_b`` normalises for how
    many buyers an item has), which damps the pull of best-sellers. Items with no similarity path to a
    customer's history score ``-inf`` rather than 0: there is no evidence for them.
    """

    name = "item_knn"
    supports_similar_items = True

    def __init__(
        self,
        similarity: str = "cosine",
        neighbours: int = 100,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int = 0,
    ) -> None:
        super().__init__()
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity={similarity!r} is not one of {', '.join(SIMILARITIES)}")
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        self.similarity = similarity
        self.neighbours = neighbours
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads
        self.item_similarity: sp.csr_matrix | None = None

    def fit(self, data: Interactions) -> ItemKNNRecommender:
        item_customers = data.matrix.T.tocsr().astype(np.float64)
        if self.similarity == "cosine":
            weighted = normalize(item_customers)
        else:
            weighted = bm25_weight(item_customers, K1=self.bm25_k1, B=self.bm25_b)
        # one extra neighbour because each item is usually its own nearest; it is dropped below
        knn = all_pairs_knn(weighted.T.tocsr(), self.neighbours + 1, show_progress=False,
                            num_threads=self.num_threads).tocsr()
        self.item_similarity = _other_neighbours(knn, self.neighbours).astype(np.float32)
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


def _other_neighbours(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """The ``n`` largest positive entries of each row of ``matrix``, the diagonal left out."""
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    usable = (row_of != matrix.indices) & (matrix.data > 0)
    order = np.flatnonzero(usable)[np.lexsort((-matrix.data[usable], row_of[usable]))]
    starts = np.searchsorted(row_of[order], np.arange(matrix.shape[0]))
    rank = np.arange(len(order)) - starts[row_of[order]]
    keep = order[rank < n]
    return sp.csr_matrix((matrix.data[keep], (row_of[keep], matrix.indices[keep])), shape=matrix.shape)
