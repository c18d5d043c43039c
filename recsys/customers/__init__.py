"""Customer intelligence: point-in-time features, RFM segments, behavioural clusters and churn."""

from recsys.customers.churn import (
    ChurnConfig,
    ChurnDataError,
    ChurnEvaluation,
    ChurnExamples,
    ChurnModel,
    backtest,
    calibration_table,
    churn_examples,
    churn_labels,
    classification_metrics,
    cohort_retention,
    evaluate_at,
    training_cutoffs,
)
from recsys.customers.clusters import CLUSTER_FEATURES, CustomerClusters, fit_clusters
from recsys.customers.features import customer_features
from recsys.customers.rfm import SEGMENT_GRID, SEGMENTS, rfm_scores, segment_of, segment_summary

__all__ = [
    "CLUSTER_FEATURES",
    "SEGMENTS",
    "SEGMENT_GRID",
    "ChurnConfig",
    "ChurnDataError",
    "ChurnEvaluation",
    "ChurnExamples",
    "ChurnModel",
    "CustomerClusters",
    "backtest",
    "calibration_table",
    "churn_examples",
    "churn_labels",
    "classification_metrics",
    "cohort_retention",
    "customer_features",
    "evaluate_at",
    "fit_clusters",
    "rfm_scores",
    "segment_of",
    "segment_summary",
    "training_cutoffs",
]
