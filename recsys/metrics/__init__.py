"""Offline evaluation metrics that take id lists, never model objects."""

from recsys.metrics.beyond_accuracy import (
    catalog_coverage_at_k,
    intra_list_diversity_at_k,
    item_choice_probability,
    novelty_at_k,
)
from recsys.metrics.ranking import (
    METRICS,
    EmptyEvaluationError,
    RankingScores,
    evaluate_rankings,
    hit_matrix,
    hit_rate_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_scores,
    recall_at_k,
)

__all__ = [
    "METRICS",
    "EmptyEvaluationError",
    "RankingScores",
    "catalog_coverage_at_k",
    "evaluate_rankings",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity_at_k",
    "item_choice_probability",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty_at_k",
    "precision_at_k",
    "ranking_scores",
    "recall_at_k",
]
