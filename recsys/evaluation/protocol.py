"""A temporal evaluation protocol: validation and test folds cut at fixed dates, two settings.

The protocol (the one the Online Retail benchmark uses, see :data:`ONLINE_RETAIL`):

* **validation fold**: train on every row before ``validation_cutoff``, evaluate on
  ``validation_cutoff <= t < test_cutoff``. Hyperparameters and blend weights are chosen here only.
* **test fold**: train on every row before ``test_cutoff``, evaluate on ``test_cutoff <= t < end``
  (``end=None``: to the last row). The chosen configuration is refitted here and scored once.

In both folds the evaluated customers bought at least once on each side of the cut, and a customer's
relevant set is the distinct items they bought in the evaluation window. Two settings:

* ``"A"`` (repeat purchases allowed): items bought before may be recommended and count as relevant.
* ``"B"`` (new items only): each customer's training items are removed from both the recommendations
  (``exclude_seen=True``) and the relevant set; customers left with no relevant item are dropped.

Metrics are Microsoft Recommenders' (see :mod:`recsys.metrics.ranking`): ``ndcg@k``, ``recall@k``,
``precision@k``, ``map@k`` for each requested k, plus ``coverage@k`` (distinct items in all top-k
lists over the training catalogue) at the smallest k.

Relevant sets hold item rows of the fold's training index. Items first sold in the evaluation
window have no row there and no model can recommend them, yet the customer did buy them, so they
still count towards |R| (recall's denominator and nDCG's ideal): they are given rows from
``train.n_items`` upwards, which no recommendation can hit.

Typical use::

    folds = ONLINE_RETAIL.folds(transactions)           # {"validation": Fold, "test": Fold}
    fold = folds["validation"]
    model = create_model("ease", l2=200.0).fit(fold.train)
    evaluate(model, fold, "A")                          # {"ndcg@10": ..., "recall@20": ..., ...}
    evaluate_settings(model, fold)                      # {"A": {...}, "B": {...}}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from recsys.data import schema
from recsys.data.interactions import Interactions, build_interactions
from recsys.data.splits import as_naive_utc
from recsys.metrics.ranking import evaluate_rankings

Setting = Literal["A", "B"]
SETTINGS: tuple[Setting, ...] = ("A", "B")

#: ``recommend(customer_rows, k, exclude_seen) -> item_rows`` of shape (n, k), padded with -1
RecommendFn = Callable[[np.ndarray, int, bool], np.ndarray]


class SplitError(ValueError):
    """A split that leaves nothing to train on or nothing to evaluate."""


class _Recommends(Protocol):
    def recommend(self, customer_rows: np.ndarray, k: int, *, exclude_seen: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Fold:
    """One train/evaluation cut.

    ``train`` holds every row before ``cutoff`` (its ``reference_time`` is ``cutoff``);
    ``customers`` are the evaluated customer rows of ``train`` (setting A), sorted, and
    ``relevant[i]`` the item rows customer ``customers[i]`` bought in ``[cutoff, end)``, with rows
    ``>= train.n_items`` standing for items unknown to ``train``. Use :meth:`ground_truth` for a
    setting's customers and relevant sets.
    """

    name: str
    train: Interactions
    cutoff: pd.Timestamp
    end: pd.Timestamp | None
    customers: np.ndarray
    relevant: tuple[frozenset[int], ...]

    def ground_truth(self, setting: Setting) -> tuple[np.ndarray, list[frozenset[int]]]:
        """Evaluated customer rows and their relevant item rows under ``setting``."""
        check_setting(setting)
        if setting == "A":
            return self.customers, list(self.relevant)
        seen = self.train.matrix
        kept_rows, kept_sets = [], []
        for row, items in zip(self.customers, self.relevant, strict=True):
            new = items - frozenset(seen.indices[seen.indptr[row]:seen.indptr[row + 1]].tolist())
            if new:
                kept_rows.append(row)
                kept_sets.append(new)
        return np.asarray(kept_rows, dtype=np.int64), kept_sets


@dataclass(frozen=True)
class TemporalProtocol:
    """Validation and test folds cut at fixed dates; see the module docstring.

    ``weighting`` is passed to :func:`~recsys.data.interactions.build_interactions` for the training
    matrices (``orders``: distinct orders per customer and item).
    """

    validation_cutoff: pd.Timestamp | str
    test_cutoff: pd.Timestamp | str
    end: pd.Timestamp | str | None = None
    weighting: str = "orders"

    def __post_init__(self) -> None:
        validation, test = pd.Timestamp(self.validation_cutoff), pd.Timestamp(self.test_cutoff)
        if not validation < test:
            raise ValueError(f"validation_cutoff ({validation}) must be before test_cutoff ({test})")
        if self.end is not None and not pd.Timestamp(self.end) > test:
            raise ValueError(f"end ({self.end}) must be after test_cutoff ({test})")

    def validation_fold(self, transactions: pd.DataFrame) -> Fold:
        """Train before ``validation_cutoff``, evaluate up to ``test_cutoff``."""
        return make_fold(transactions, self.validation_cutoff, self.test_cutoff, name="validation",
                         weighting=self.weighting)

    def test_fold(self, transactions: pd.DataFrame) -> Fold:
        """Train before ``test_cutoff``, evaluate up to ``end``."""
        return make_fold(transactions, self.test_cutoff, self.end, name="test", weighting=self.weighting)

    def folds(self, transactions: pd.DataFrame) -> dict[str, Fold]:
        return {"validation": self.validation_fold(transactions), "test": self.test_fold(transactions)}


#: The Online Retail protocol: validate 2011-06-09 .. 2011-09-09, test 2011-09-09 to the end.
ONLINE_RETAIL = TemporalProtocol(validation_cutoff="2011-06-09", test_cutoff="2011-09-09")


def make_fold(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp | str,
    end: pd.Timestamp | str | None = None,
    *,
    name: str = "fold",
    weighting: str = "orders",
) -> Fold:
    """A :class:`Fold` of cleaned ``transactions`` cut at ``cutoff`` (evaluation window ``[cutoff, end)``).

    A cutoff with a time zone is taken in UTC, the zone the loaders store every timestamp in."""
    cutoff = as_naive_utc(cutoff)
    end = None if end is None else as_naive_utc(end)
    stamps = transactions[schema.TIMESTAMP]
    if stamps.isna().any():
        raise ValueError(f"{schema.TIMESTAMP!r} has missing values; a row without a time has no side")
    before = transactions[stamps < cutoff]
    after_mask = stamps >= cutoff
    if end is not None:
        after_mask &= stamps < end
    after = transactions[after_mask]
    if before.empty or after.empty:
        raise SplitError(f"cutoff {cutoff} leaves an empty side: {len(before)} rows before, {len(after)} in "
                         f"the evaluation window")
    return fold_from_frames(before, after, name=name, weighting=weighting, cutoff=cutoff, end=end)


def fold_from_frames(
    train: pd.DataFrame,
    held_out: pd.DataFrame,
    *,
    name: str = "fold",
    weighting: str = "orders",
    cutoff: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> Fold:
    """A :class:`Fold` training on ``train`` and evaluating on ``held_out``, however they were split
    (temporal cut, per-customer random or leave-last-out). ``cutoff`` is the training reference time
    (default: the last training row)."""
    if train.empty or held_out.empty:
        raise SplitError(f"the {name} split leaves an empty side: {len(train)} training rows, "
                         f"{len(held_out)} held-out rows")
    interactions = build_interactions(train, weighting=weighting, reference_time=cutoff)
    customer_rows = interactions.customers.to_index(held_out[schema.CUSTOMER_ID])
    known = customer_rows >= 0
    if not known.any():
        raise SplitError(f"no held-out customer of the {name} split has a training row (none bought before "
                         f"the evaluation window)")
    item_ids = held_out[schema.ITEM_ID].astype(str).to_numpy()[known]
    item_rows = interactions.items.to_index(item_ids)
    new_items = item_rows < 0
    if new_items.any():
        # Deterministic rows for items the training index lacks: sorted ids, after the known rows.
        _, codes = np.unique(item_ids[new_items], return_inverse=True)
        item_rows[new_items] = interactions.n_items + codes
    pairs = pd.DataFrame({"customer": customer_rows[known], "item": item_rows}).drop_duplicates()
    grouped = pairs.groupby("customer", sort=True)["item"].agg(lambda s: frozenset(s.tolist()))
    return Fold(name=name, train=interactions, cutoff=interactions.reference_time if cutoff is None else cutoff,
                end=end, customers=grouped.index.to_numpy(np.int64), relevant=tuple(grouped.tolist()))


def evaluate(
    model: _Recommends | RecommendFn,
    fold: Fold,
    setting: Setting = "A",
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """Metrics of ``model`` (already fitted on ``fold.train``) on ``fold`` under ``setting``.

    ``model`` is a :class:`~recsys.models.base.Recommender` (anything with ``recommend``) or a
    function ``recommend(customer_rows, k, exclude_seen) -> item_rows`` returning an ``(n, k)`` int
    array of item rows of ``fold.train``, padded with ``-1``. Returns ``<metric>@<k>`` for ndcg,
    recall, precision and map at every k in ``ks``, ``coverage@<min k>`` and ``n_customers`` (how many
    were evaluated). In setting B a list holding one of the customer's training items is an error.
    """
    check_setting(setting)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must hold positive cut-offs, got {ks}")
    customers, relevant = fold.ground_truth(setting)
    exclude_seen = setting == "B"
    item_rows = _recommend(model, customers, ks[-1], exclude_seen)
    if exclude_seen:
        _check_nothing_seen(item_rows, customers, fold.train)
    recommended = [row[row >= 0].tolist() for row in item_rows]
    scores = evaluate_rankings(recommended, relevant, ks=ks, metrics=("ndcg", "recall", "precision", "map"))
    top = item_rows[:, : ks[0]]
    scores[f"coverage@{ks[0]}"] = len(np.unique(top[top >= 0])) / fold.train.n_items
    scores["n_customers"] = len(customers)
    scores.pop("n_excluded", None)
    return scores


def evaluate_settings(
    model: _Recommends | RecommendFn, fold: Fold, ks: Sequence[int] = (10, 20)
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` under both settings: ``{"A": {...}, "B": {...}}``."""
    return {setting: evaluate(model, fold, setting, ks) for setting in SETTINGS}


def check_setting(setting: str) -> None:
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")


def _recommend(model: _Recommends | RecommendFn, customers: np.ndarray, k: int, exclude_seen: bool) -> np.ndarray:
    if hasattr(model, "recommend"):
        item_rows, _ = model.recommend(customers, k, exclude_seen=exclude_seen)
    elif callable(model):
        item_rows = model(customers, k, exclude_seen)
    else:
        raise TypeError(f"expected a recommender or a recommend function, got {type(model).__name__}")
    item_rows = np.asarray(item_rows)
    if item_rows.shape != (len(customers), k) or not np.issubdtype(item_rows.dtype, np.integer):
        raise ValueError(f"recommendations must be an integer array of shape {(len(customers), k)}, "
                         f"got {item_rows.dtype} {item_rows.shape}")
    return item_rows


def _check_nothing_seen(item_rows: np.ndarray, customers: np.ndarray, train: Interactions) -> None:
    seen = train.matrix[customers].tocoo()
    n_items = train.n_items
    seen_keys = seen.row.astype(np.int64) * n_items + seen.col
    listed = np.repeat(np.arange(len(customers), dtype=np.int64), item_rows.shape[1]) * n_items
    items = item_rows.ravel()
    real = items >= 0
    hits = np.isin(listed[real] + items[real], seen_keys)
    if hits.any():
        raise ValueError(f"setting B lists {int(hits.sum())} items the customers bought in training; "
                         "the recommender ignored exclude_seen=True")
