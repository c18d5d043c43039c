"""Lookalike audiences: the customers most like a seed audience, by what they bought.

Each customer's neighbourhood is their nearest customers by purchases (:mod:`recsys.models.user_knn`).
A customer outside the seeds scores the share of their neighbourhood's similarity that lies in the seed
audience, 0.4 meaning that 40% of the weight of the customers most like them is on seeds, shrunk towards
the seeds' share of all customers by one median neighbourhood's weight: a light buyer whose only
neighbour is a seed does not outrank one whose fifty nearest are mostly seeds. Ties go to more seed
neighbours, then to the earlier customer row. On Online Retail (``benchmarks/lookalike_online_retail.py``,
where the shrinkage was chosen) audiences of 100 bought the seeds' item for the first time at 9.1%
(8.8% unshrunk, 8.1% by summed seed similarity), against 3.1% for the most active customers and 2.1%
for all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Lookalikes:
    """Customer rows, best first, with their (shrunk) seed share and how many of their neighbours are seeds."""

    rows: np.ndarray
    seed_share: np.ndarray
    seed_neighbours: np.ndarray
    #: customers outside the seeds with at least one seed neighbour (the most the audience can hold)
    reachable: int


def lookalikes(similarity: sp.csr_matrix, seed_rows: np.ndarray, size: int) -> Lookalikes:
    """The ``size`` customers (rows of the square ``similarity``) outside ``seed_rows`` whose
    neighbourhoods lie most in the seeds; fewer when fewer have a seed neighbour."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    n = similarity.shape[0]
    is_seed = np.zeros(n, dtype=bool)
    is_seed[np.asarray(seed_rows, dtype=np.int64)] = True
    similarity = similarity.tocsr()
    total = np.asarray(similarity.sum(axis=1)).ravel()
    on_seeds = similarity @ is_seed.astype(np.float64)
    seed_neighbours = (similarity > 0).astype(np.int64) @ is_seed.astype(np.int64)
    prior = float(np.median(total[total > 0])) if (total > 0).any() else 0.0
    base_rate = is_seed.mean()
    share = np.divide(on_seeds + prior * base_rate, total + prior, out=np.zeros(n), where=total + prior > 0)
    candidates = np.flatnonzero(~is_seed & (seed_neighbours > 0))
    order = np.lexsort((candidates, -seed_neighbours[candidates], -share[candidates]))[:size]
    chosen = candidates[order]
    return Lookalikes(chosen, share[chosen], seed_neighbours[chosen], len(candidates))
