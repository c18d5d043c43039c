"""Validation and test folds for each protocol a config can name.

The temporal protocol is :class:`recsys.evaluation.TemporalProtocol` as is. The random per-customer
split and leave-last-out cut rows rather than time, so their folds are built here from the two frames
of a split, with the same rules as :func:`recsys.evaluation.make_fold`: evaluated customers bought on
both sides, relevant sets are the distinct held-out items, and held-out items unknown to training keep
counting towards |R| through rows from ``train.n_items`` upwards.

Both row-based protocols carve validation out of train+validation the way test was carved out of all
rows, so the validation fold looks like the test fold one step earlier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.config import LeaveLastOutConfig, StratifiedConfig, TemporalConfig
from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.data.splits import leave_last_out, stratified_split
from recsys.evaluation import Fold, TemporalProtocol


def make_folds(transactions: pd.DataFrame, protocol: TemporalConfig | StratifiedConfig | LeaveLastOutConfig,
               weighting: str = "orders") -> dict[str, Fold]:
    """``{"validation": Fold, "test": Fold}`` of cleaned ``transactions`` under ``protocol``."""
    if isinstance(protocol, TemporalConfig):
        return TemporalProtocol(protocol.validation_cutoff, protocol.test_cutoff, protocol.end,
                                weighting=weighting).folds(transactions)
    if isinstance(protocol, StratifiedConfig):
        def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
            return stratified_split(frame, ratio=protocol.ratio, seed=protocol.seed, min_rating=protocol.min_rating)
    elif isinstance(protocol, LeaveLastOutConfig):
        def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
            return leave_last_out(frame, n=protocol.n, by=protocol.by)
    else:
        raise TypeError(f"unknown protocol {type(protocol).__name__}")
    train_validation, test = split(transactions)
    train, validation = split(train_validation)
    return {"validation": fold_from_frames(train, validation, "validation", weighting),
            "test": fold_from_frames(train_validation, test, "test", weighting)}


def fold_from_frames(train: pd.DataFrame, held_out: pd.DataFrame, name: str, weighting: str = "orders") -> Fold:
    """A :class:`Fold` that trains on ``train`` and evaluates on ``held_out``."""
    if train.empty or held_out.empty:
        raise ValueError(f"the {name} split leaves an empty side: {len(train)} training rows, "
                         f"{len(held_out)} held-out rows")
    interactions = build_interactions(train, weighting=weighting)
    customer_rows = interactions.customers.to_index(held_out[schema.CUSTOMER_ID])
    known = customer_rows >= 0
    if not known.any():
        raise ValueError(f"no held-out customer of the {name} split has a training row")
    item_ids = held_out[schema.ITEM_ID].astype(str).to_numpy()[known]
    item_rows = interactions.items.to_index(item_ids)
    new_items = item_rows < 0
    if new_items.any():
        _, codes = np.unique(item_ids[new_items], return_inverse=True)
        item_rows[new_items] = interactions.n_items + codes
    pairs = pd.DataFrame({"customer": customer_rows[known], "item": item_rows}).drop_duplicates()
    grouped = pairs.groupby("customer", sort=True)["item"].agg(lambda s: frozenset(s.tolist()))
    return Fold(name=name, train=interactions, cutoff=interactions.reference_time, end=None,
                customers=grouped.index.to_numpy(np.int64), relevant=tuple(grouped.tolist()))
