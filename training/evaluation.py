"""Temporal holdout evaluation of recommenders: fit before a cutoff, score on what came after."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data import schema
from recsys.data.interactions import Interactions, build_interactions
from recsys.metrics.ranking import evaluate_rankings
from recsys.models.base import Recommender


@dataclass(frozen=True)
class Holdout:
    train: Interactions
    customers: np.ndarray  # customer rows (of train) evaluated
    relevant: list[set[int]]  # item rows bought in the test period, per evaluated customer
    cutoff: pd.Timestamp

    @property
    def n_customers(self) -> int:
        return len(self.customers)


def make_holdout(transactions: pd.DataFrame, cutoff: pd.Timestamp | str | None = None,
                 holdout_days: int = 90) -> Holdout:
    """Split at ``cutoff`` (default: ``holdout_days`` before the last transaction).

    Evaluated customers bought on both sides; relevant items are those of the test period that exist
    in the training catalogue (an item never sold before cannot be recommended by any model).
    """
    timestamps = transactions[schema.TIMESTAMP]
    cutoff = pd.Timestamp(cutoff) if cutoff is not None else timestamps.max().normalize() - pd.Timedelta(
        days=holdout_days)
    before, after = transactions[timestamps < cutoff], transactions[timestamps >= cutoff]
    if before.empty or after.empty:
        raise ValueError(f"cutoff {cutoff} leaves an empty side: {len(before)} rows before, {len(after)} after")
    train = build_interactions(before, reference_time=cutoff)
    after = after.assign(customer_idx=train.customers.to_index(after[schema.CUSTOMER_ID]),
                         item_idx=train.items.to_index(after[schema.ITEM_ID]))
    after = after[(after["customer_idx"] >= 0) & (after["item_idx"] >= 0)]
    grouped = after.groupby("customer_idx")["item_idx"].agg(lambda s: set(s.tolist()))
    return Holdout(train, grouped.index.to_numpy(np.int64), grouped.tolist(), cutoff)


def evaluate_model(model: Recommender, holdout: Holdout, ks: tuple[int, ...] = (10, 20),
                   exclude_seen: bool = False) -> dict[str, float]:
    """Metrics of a model fitted on ``holdout.train``.

    ``exclude_seen`` is the "new items only" setting: bought items leave both the lists and the
    relevant sets, and customers left with nothing relevant are not counted.
    """
    item_rows, _ = model.recommend(holdout.customers, max(ks), exclude_seen=exclude_seen)
    relevant = holdout.relevant
    if exclude_seen:
        seen = holdout.train.matrix
        relevant = [rel - set(seen[row].indices.tolist()) for row, rel in zip(holdout.customers, relevant,
                                                                              strict=True)]
    recommended = [[int(i) for i in row if i >= 0] for row in item_rows]
    metrics = evaluate_rankings(recommended, relevant, ks=ks)
    top = {int(i) for row in item_rows[:, : min(ks)] for i in row if i >= 0}
    metrics[f"coverage@{min(ks)}"] = len(top) / max(1, holdout.train.n_items)
    return metrics


def evaluate_models(factories: Mapping[str, Callable[[], Recommender]], holdout: Holdout,
                    ks: tuple[int, ...] = (10, 20)) -> dict[str, dict[str, float]]:
    results = {}
    for name, factory in factories.items():
        model = factory().fit(holdout.train)
        results[name] = evaluate_model(model, holdout, ks)
        results[f"{name}.new_items"] = evaluate_model(model, holdout, ks, exclude_seen=True)
    return results
