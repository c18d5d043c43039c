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

import pandas as pd

from experiments.config import LeaveLastOutConfig, StratifiedConfig, TemporalConfig
from recsys.data.splits import leave_last_out, stratified_split
from recsys.evaluation import Fold, TemporalProtocol
from recsys.evaluation.protocol import fold_from_frames


def make_folds(transactions: pd.DataFrame, protocol: TemporalConfig | StratifiedConfig | LeaveLastOutConfig,
               weighting: str = "orders") -> dict[str, Fold]:
    """``{"validation": Fold, "test": Fold}`` of cleaned ``transactions`` under ``protocol``."""
    if isinstance(protocol, TemporalConfig):
        return TemporalProtocol(protocol.validation_cutoff, protocol.test_cutoff, protocol.end,
                                weighting=weighting).folds(transactions)
    if isinstance(protocol, StratifiedConfig):
        def split(frame: pd.DataFrame, first: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
            # min_rating chooses the customers once: applied again to what the test split left for
            # training, it would drop from the validation fold customers the test fold keeps
            return stratified_split(frame, ratio=protocol.ratio, seed=protocol.seed,
                                    min_rating=protocol.min_rating if first else 1)
    elif isinstance(protocol, LeaveLastOutConfig):
        def split(frame: pd.DataFrame, first: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
            return leave_last_out(frame, n=protocol.n, by=protocol.by)
    else:
        raise TypeError(f"unknown protocol {type(protocol).__name__}")
    train_validation, test = split(transactions, first=True)
    train, validation = split(train_validation, first=False)
    return {"validation": fold_from_frames(train, validation, name="validation", weighting=weighting),
            "test": fold_from_frames(train_validation, test, name="test", weighting=weighting)}
