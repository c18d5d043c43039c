"""Bayesian personalised ranking (Rendle et al. 2009): factors trained to rank bought over unbought."""

from __future__ import annotations

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from recsys.data.interactions import Interactions
from recsys.models.base import ModelFitError
from recsys.models.factorization import FactorizationRecommender, check_counts


class BPRRecommender(FactorizationRecommender):
    """implicit's CPU BPR, trained by SGD on sampled (customer, bought, not bought) triples.

    implicit adds an item bias as one extra factor column (its customer column is fixed at 1).
    The SGD updates from several threads race (Hogwild), so results repeat exactly for a given
    ``random_state`` only with ``num_threads=1``, the default; more threads are faster but vary.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 0,
        num_threads: int = 1,
    ) -> None:
        super().__init__()
        check_counts(factors=factors, iterations=iterations)
        if learning_rate <= 0 or regularization < 0:
            raise ValueError(f"need learning_rate > 0 and regularization >= 0, got {learning_rate}, {regularization}")
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def fit(self, data: Interactions) -> BPRRecommender:
        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            model.fit(data.matrix.tocsr().astype(np.float32), show_progress=False)
        if not (np.isfinite(model.user_factors).all() and np.isfinite(model.item_factors).all()):
            raise ModelFitError("BPR produced non-finite factors; lower learning_rate or raise regularization")
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._remember_seen(data)
        return self
