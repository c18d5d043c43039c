"""The training job's holdout: the last days of the data, scored with the offline protocol's code."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from recsys.data import schema
from recsys.evaluation.protocol import Fold, evaluate, make_fold
from recsys.models.base import Recommender


def make_holdout(transactions: pd.DataFrame, cutoff: pd.Timestamp | str | None = None,
                 holdout_days: int = 90, weighting: str = "orders") -> Fold:
    """Train before ``cutoff`` (default: ``holdout_days`` before the last day), evaluate after it."""
    if cutoff is None:
        cutoff = transactions[schema.TIMESTAMP].max().normalize() - pd.Timedelta(days=holdout_days)
    return make_fold(transactions, cutoff, name="holdout", weighting=weighting)


def evaluate_models(factories: Mapping[str, Callable[[], Recommender]], holdout: Fold,
                    ks: tuple[int, ...] = (10, 20)) -> dict[str, dict[str, float]]:
    """Each model fitted on the holdout's training side, scored with repeats allowed (``name``) and on
    new items only (``name.new_items``)."""
    results = {}
    for name, factory in factories.items():
        model = factory().fit(holdout.train)
        results[name] = evaluate(model, holdout, "A", ks)
        results[f"{name}.new_items"] = evaluate(model, holdout, "B", ks)
    return results
