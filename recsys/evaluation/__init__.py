"""Offline evaluation protocols: folds cut in time and the metrics a model scores on them."""

from recsys.evaluation.protocol import (
    ONLINE_RETAIL,
    SETTINGS,
    Fold,
    SplitError,
    TemporalProtocol,
    evaluate,
    evaluate_settings,
    make_fold,
)

__all__ = ["ONLINE_RETAIL", "SETTINGS", "Fold", "SplitError", "TemporalProtocol", "evaluate", "evaluate_settings",
           "make_fold"]
