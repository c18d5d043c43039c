"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky 2008)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import bm25_weight
from threadpoolctl import threadpool_limits

from recsys.data.interactions import Interactions
from recsys.models.base import ModelFitError
from recsys.models.factorization import FactorizationRecommender, check_counts


class ALSRecommender(FactorizationRecommender):
    """implicit's CPU ALS with confidence ``1 + alpha * weight`` for every purchase.

    ``bm25_weighting`` first re-weights the customer x item matrix with BM25 (per item, over its
    customers; ``bm25_k1``/``bm25_b``), which tempers heavy buyers and best-sellers. Fitting is
    deterministic for a given ``random_state``: each half-step solves every row independently from
    the other side's fixed factors, so the thread count does not change the result.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        random_state: int = 0,
        bm25_weighting: bool = False,
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        num_threads: int = 0,
    ) -> None:
        super().__init__()
        check_counts(factors=factors, iterations=iterations)
        if regularization < 0 or alpha <= 0:
            raise ValueError(f"need regularization >= 0 and alpha > 0, got {regularization} and {alpha}")
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.bm25_weighting = bm25_weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def fit(self, data: Interactions) -> ALSRecommender:
        weights = data.matrix.tocsr().astype(np.float32)
        if self.bm25_weighting:
            weights = sp.csr_matrix(bm25_weight(weights.T, K1=self.bm25_k1, B=self.bm25_b).T, dtype=np.float32)
        # implicit's solver runs its own threads; a threaded BLAS underneath them oversubscribes the
        # cores and is many times slower (implicit warns about exactly this)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            model.fit(weights, show_progress=False)
        if not (np.isfinite(model.user_factors).all() and np.isfinite(model.item_factors).all()):
            raise ModelFitError("ALS produced non-finite factors; lower alpha or raise regularization")
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._remember_seen(data)
        return self
