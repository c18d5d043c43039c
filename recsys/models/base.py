"""The one recommender contract every model implements.

Models work on dense row numbers of a fitted :class:`~recsys.data.interactions.Interactions`
(customer rows, item columns); mapping external ids, fallbacks for unknown customers and business
rules live outside the models. Results are fixed-width arrays: ``(n, k)`` item rows padded with
``-1`` and their scores padded with ``-inf``, so callers never special-case short lists.

Saved models are ``.npz`` archives readable with ``allow_pickle=False``: a ``meta`` entry holding
one JSON string (model name, constructor parameters, format version), the learned arrays under
``state__<name>`` and the training matrix under ``seen_*``.
"""

from __future__ import annotations

import abc
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recsys.data.interactions import Interactions

FORMAT_VERSION = 1


class ModelFitError(RuntimeError):
    """Fitting failed or produced a model that must not be used."""


class NotFittedError(RuntimeError):
    """A model was asked to recommend before it was fitted."""


class Recommender(abc.ABC):
    """Top-k recommendations for known customers, and optionally similar items.

    Subclasses store each constructor parameter under an attribute of the same name (the
    scikit-learn convention): :meth:`get_params` reads them back, and :meth:`load` passes them to the
    constructor again.
    """

    name: ClassVar[str] = "recommender"
    #: whether :meth:`similar_items` is meaningful for this model
    supports_similar_items: ClassVar[bool] = False
    #: whether ``recommend(..., exclude_seen=True)`` orders items otherwise than the full list does;
    #: when not, that list is the full one without the customer's items, and need not be stored twice
    ranks_new_items_apart: ClassVar[bool] = False
    #: dense score cells computed at once by :meth:`recommend`; bounds memory for any number of rows
    score_batch_cells: ClassVar[int] = 1 << 22

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

        def scores_of(rows: np.ndarray) -> np.ndarray:
            scores = self._ranking_scores(rows).astype(np.float32, copy=False)
            if exclude_seen:
                scores = scores.copy()
                mask_seen(scores, self._seen[rows])
            return scores

        return self._batched_top_k(customer_rows, k, scores_of)

    def _ranking_scores(self, customer_rows: np.ndarray) -> np.ndarray:
        """What :meth:`recommend` ranks by: :meth:`score`, unless a model leaves some items out (-inf)."""
        return self.score(customer_rows)

    def _batched_top_k(self, customer_rows: np.ndarray, k: int,
                       scores_of: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of ``scores_of(rows)``, computed a batch of customer rows at a time."""
        self._check_fitted()
        customer_rows = self._check_customer_rows(customer_rows)
        check_k(k)
        item_rows = np.full((len(customer_rows), k), -1, dtype=np.int64)
        item_scores = np.full((len(customer_rows), k), -np.inf, dtype=np.float32)
        for batch in self._batches(len(customer_rows)):
            item_rows[batch], item_scores[batch] = top_k(scores_of(customer_rows[batch]), k)
        return item_rows, item_scores

    def recommend_with_sources(
        self, customer_rows: np.ndarray, k: int, *, exclude_seen: bool = False
    ) -> tuple[np.ndarray, np.ndarray, str | np.ndarray]:
        """:meth:`recommend` plus what produced the items: one name for all of them (a single model names
        itself), or an ``(n, k)`` object array naming each slot's source (a ranker over candidate
        generators names the generator each item came from)."""
        item_rows, scores = self.recommend(customer_rows, k, exclude_seen=exclude_seen)
        return item_rows, scores, self.name

    def similar_items(self, item_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` other items for each item row (the item itself excluded)."""
        raise NotImplementedError(f"{self.name} does not provide similar items")

    # -- persistence: plain arrays, never pickles --------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, for tracking and for :meth:`load`."""
        params = {}
        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if not hasattr(self, name):
                raise AttributeError(
                    f"{type(self).__name__} keeps no attribute for its constructor parameter {name!r}; "
                    "store it under that name or override get_params()"
                )
            params[name] = getattr(self, name)
        return params

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays needed to score again."""
        return {}

    def _restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`state_arrays`, called by :meth:`load` on a freshly constructed model."""
        if arrays:
            raise NotImplementedError(f"{type(self).__name__} saves state but cannot restore it")

    def save(self, path: str | Path) -> Path:
        self._check_fitted()
        path = Path(path)
        meta = {"format": FORMAT_VERSION, "model": self.name, "params": self.get_params()}
        arrays = {f"state__{key}": value for key, value in self.state_arrays().items()}
        arrays.update(sparse_to_arrays("seen", self._seen))
        arrays["meta"] = np.array([json.dumps(meta)])
        np.savez(path, **arrays)
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """A model saved by :meth:`save`, ready to score without refitting."""
        with np.load(npz_path(path), allow_pickle=False) as archive:
            meta = _read_meta(archive, path)
            if meta["model"] != cls.name:
                raise ValueError(f"{path} holds a {meta['model']!r} model, not {cls.name!r}")
            arrays = {key: archive[key] for key in archive.files}
        model = cls(**meta["params"])
        model._restore_state({key.removeprefix("state__"): value for key, value in arrays.items()
                              if key.startswith("state__")})
        model._seen = arrays_to_sparse(arrays, "seen")
        return model

    # -- helpers ------------------------------------------------------------------------------------------
    def _remember_seen(self, data: Interactions) -> None:
        self._seen = data.matrix.tocsr()

    def _check_fitted(self) -> None:
        if self._seen is None:
            raise NotFittedError(f"{self.name} is not fitted; call fit() first")

    def _check_customer_rows(self, customer_rows: np.ndarray) -> np.ndarray:
        return check_rows(customer_rows, self._seen.shape[0], "customer")

    def _check_item_rows(self, item_rows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return check_rows(item_rows, self._seen.shape[1], "item")

    def _batches(self, n_rows: int) -> Iterator[slice]:
        size = max(1, self.score_batch_cells // max(1, self.n_items))
        for start in range(0, n_rows, size):
            yield slice(start, min(start + size, n_rows))

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self._seen.shape[1]

    @property
    def n_customers(self) -> int:
        self._check_fitted()
        return self._seen.shape[0]


def read_model_name(path: str | Path) -> str:
    """The registry name stored in a saved model, without loading its arrays."""
    with np.load(npz_path(path), allow_pickle=False) as archive:
        return _read_meta(archive, path)["model"]


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``k`` of a dense score matrix, best first, ties broken by lower item row.

    Entries scoring ``-inf`` are never returned: their slots hold row ``-1``.
    """
    check_k(k)
    n_rows, n_cols = scores.shape
    width = min(k, n_cols)
    if n_rows == 0 or width == 0:
        return np.full((n_rows, k), -1, dtype=np.int64), np.full((n_rows, k), -np.inf, dtype=np.float32)
    if width < n_cols:
        part = _lower_rows_at_the_cut(scores, np.argpartition(-scores, width - 1, axis=1)[:, :width])
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


def _lower_rows_at_the_cut(scores: np.ndarray, part: np.ndarray) -> np.ndarray:
    """``part`` (each row's columns from a partial sort) with the entries tied with the row's last kept
    score replaced by the lowest columns among all entries of that score: a partial sort keeps an
    arbitrary subset of them, and a list must not depend on it."""
    cut = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
    tied = scores == cut
    kept_tied = np.take_along_axis(tied, part, axis=1).sum(axis=1)
    # rows whose cut is -inf lose those slots anyway
    rows = np.flatnonzero((tied.sum(axis=1) > kept_tied) & np.isfinite(cut[:, 0]))
    if rows.size:
        width = part.shape[1]
        above_row, above_col = np.nonzero(scores[rows] > cut[rows])
        tied_row, tied_col = np.nonzero(tied[rows])  # row by row, lowest column first
        n_tied = np.bincount(tied_row, minlength=len(rows))
        place = np.arange(len(tied_row)) - np.repeat(np.cumsum(n_tied) - n_tied, n_tied)
        room = width - np.bincount(above_row, minlength=len(rows))
        first = place < room[tied_row]
        # every row now holds exactly `width` columns; a stable sort by row lines them up
        owner = np.concatenate([above_row, tied_row[first]])
        columns = np.concatenate([above_col, tied_col[first]])
        part[rows] = columns[np.argsort(owner, kind="stable")].reshape(len(rows), width)
    return part


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix) -> None:
    """Set, in place, the score of every stored entry of ``seen`` (same rows as ``scores``) to -inf."""
    scores[np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr)), seen.indices] = -np.inf


def sparse_scores(matrix: sp.csr_matrix) -> np.ndarray:
    """Dense float32 copy of ``matrix`` where entries it does not store are ``-inf`` (no evidence)."""
    matrix = matrix.tocsr()
    dense = np.full(matrix.shape, -np.inf, dtype=np.float32)
    dense[np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)), matrix.indices] = matrix.data
    return dense


def exclude_self(scores: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """``scores`` (one row per entry of ``item_rows``) with each item's own column set to -inf."""
    scores[np.arange(len(item_rows)), item_rows] = -np.inf
    return scores


def check_rows(rows: np.ndarray, n: int, what: str) -> np.ndarray:
    """``rows`` as a 1-D int64 array, refusing non-integers and rows outside ``[0, n)``."""
    rows = np.asarray(rows)
    if rows.size == 0:
        return rows.reshape(0).astype(np.int64)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"{what} rows must be a 1-D integer array, got {rows.shape} {rows.dtype}")
    bad = (rows < 0) | (rows >= n)
    if bad.any():
        raise IndexError(f"{what} rows {rows[bad][:5].tolist()} are outside the fitted range [0, {n})")
    return rows.astype(np.int64, copy=False)


def sparse_to_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices,
            f"{prefix}_indptr": matrix.indptr, f"{prefix}_shape": np.asarray(matrix.shape)}


def arrays_to_sparse(arrays: dict[str, np.ndarray], prefix: str) -> sp.csr_matrix:
    return sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                         shape=tuple(int(n) for n in arrays[f"{prefix}_shape"]))


def check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def npz_path(path: str | Path) -> Path:
    """``path`` as saving wrote it: numpy adds ``.npz`` to a name without it."""
    path = Path(path)
    if not path.exists() and path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz")
    return path


def _read_meta(archive: Any, path: str | Path) -> dict[str, Any]:
    if "meta" not in archive.files:
        raise ValueError(f"{path} is not a saved recommender: it has no 'meta' entry")
    meta = json.loads(str(archive["meta"][0]))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} has format {meta.get('format')!r}; this code reads format {FORMAT_VERSION}")
    return meta
