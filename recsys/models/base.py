"""The one recommender contract every model implements.

Models work on dense row numbers of a fitted :class:`~recsys.data.interactions.Interactions`
(customer rows, item columns); mapping external ids, fallbacks for unknown customers and business
rules live outside the models. Results are fixed-width arrays: ``(n, k)`` item rows padded with
``-1`` and their scores padded with ``-inf``, so callers never special-case short lists.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.data.interactions import Interactions


class ModelFitError(RuntimeError):
    """Fitting failed or produced a model that must not be used."""


class NotFittedError(RuntimeError):
    """A model was asked to recommend before it was fitted."""


class Recommender(abc.ABC):
    """Top-k recommendations for known customers, and optionally similar items."""

    name: ClassVar[str] = "recommender"
    #: whether :meth:`similar_items` is meaningful for this model
    supports_similar_items: ClassVar[bool] = False

    def __init__(self) -> None:
        self._seen: sp.csr_matrix | None = None

    # -- contract --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def fit(self, data: Interactions) -> Recommender:
        """Learn from ``data``; returns self."""

    @abc.abstractmethod
    def score(self, customer_rows: np.ndarray) -> np.ndarray:
        """Dense ``(len(customer_rows), n_items)`` scores; higher is better, ``-inf`` means never."""

    def recommend(
        self, customer_rows: np.ndarray, k: int, *, exclude_seen: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` item rows and scores for each customer row."""
        customer_rows = np.asarray(customer_rows, dtype=np.int64)
        self._check_fitted()
        scores = self.score(customer_rows).astype(np.float32, copy=False)
        if exclude_seen:
            scores = scores.copy()
            seen = self._seen[customer_rows]
            scores[np.repeat(np.arange(len(customer_rows)), np.diff(seen.indptr)), seen.indices] = -np.inf
        return top_k(scores, k)

    def similar_items(self, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` other items for each item row (the item itself excluded)."""
        raise NotImplementedError(f"{self.name} does not provide similar items")

    # -- persistence: plain arrays, never pickles --------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, for tracking and for :meth:`load`."""
        return {}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays needed to score again."""
        return {}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        arrays = {f"state__{key}": value for key, value in self.state_arrays().items()}
        if self._seen is not None:
            arrays.update(seen_data=self._seen.data, seen_indices=self._seen.indices,
                          seen_indptr=self._seen.indptr, seen_shape=np.asarray(self._seen.shape))
        np.savez(path, **arrays)
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    # -- helpers ------------------------------------------------------------------------------------------
    def _remember_seen(self, data: Interactions) -> None:
        self._seen = data.matrix.tocsr()

    def _check_fitted(self) -> None:
        if self._seen is None:
            raise NotFittedError(f"{self.name} is not fitted; call fit() first")

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self._seen.shape[1]


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``k`` of a dense score matrix, best first, ties broken by lower item row.

    Entries scoring ``-inf`` are never returned: their slots hold row ``-1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_rows, n_cols = scores.shape
    width = min(k, n_cols)
    if width < n_cols:
        part = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    else:
        part = np.tile(np.arange(n_cols), (n_rows, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    # lexsort: last key is primary -> by score descending, then by item row ascending
    order = np.lexsort((part, -part_scores), axis=1)
    rows = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(part_scores, order, axis=1)
    if width < k:
        rows = np.pad(rows, ((0, 0), (0, k - width)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - width)), constant_values=-np.inf)
    rows = np.where(np.isneginf(values), -1, rows)
    return rows.astype(np.int64), values.astype(np.float32)
