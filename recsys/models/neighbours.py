"""Nearest neighbours by co-purchase: the similarity, and the parameters, item-kNN and customer-kNN share."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import all_pairs_knn, bm25_weight, normalize

from recsys.models.base import Recommender

SIMILARITIES = ("cosine", "bm25")


class NeighbourRecommender(Recommender):
    """A model that keeps, for each row of something (items, customers), its ``neighbours`` most similar
    rows by co-purchase, compared with ``similarity`` (see :func:`nearest_neighbours`)."""

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

    def _nearest(self, vectors: sp.spmatrix) -> sp.csr_matrix:
        """The neighbours of each row of ``vectors`` under this model's parameters."""
        return nearest_neighbours(vectors, self.similarity, self.neighbours, bm25_k1=self.bm25_k1,
                                  bm25_b=self.bm25_b, num_threads=self.num_threads)


def nearest_neighbours(vectors: sp.csr_matrix, similarity: str, neighbours: int, *, bm25_k1: float = 1.2,
                       bm25_b: float = 0.75, num_threads: int = 0) -> sp.csr_matrix:
    """Square matrix over the rows of ``vectors`` holding each row's ``neighbours`` most similar other
    rows (float32; a row is never its own neighbour, and only positive similarities are kept).

    ``cosine`` compares rows as they are; ``bm25`` first weights ``vectors`` with BM25 (``bm25_k1``
    saturates repeat purchases, ``bm25_b`` normalises for how many entries a row has, and columns shared
    by many rows count less), which damps the pull of best-sellers and of the heaviest buyers.
    """
    vectors = vectors.tocsr().astype(np.float64)
    weighted = normalize(vectors) if similarity == "cosine" else bm25_weight(vectors, K1=bm25_k1, B=bm25_b)
    # implicit compares the columns of its input; one extra neighbour because each row is usually its
    # own nearest, and it is dropped below
    knn = all_pairs_knn(weighted.T.tocsr(), neighbours + 1, show_progress=False, num_threads=num_threads).tocsr()
    return other_neighbours(knn, neighbours).astype(np.float32)


def other_neighbours(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """The ``n`` largest positive entries of each row of ``matrix``, the diagonal left out."""
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    usable = (row_of != matrix.indices) & (matrix.data > 0)
    order = np.flatnonzero(usable)[np.lexsort((-matrix.data[usable], row_of[usable]))]
    starts = np.searchsorted(row_of[order], np.arange(matrix.shape[0]))
    rank = np.arange(len(order)) - starts[row_of[order]]
    keep = order[rank < n]
    return sp.csr_matrix((matrix.data[keep], (row_of[keep], matrix.indices[keep])), shape=matrix.shape)
