"""Ranking metrics against answers worked out by hand on lists small enough to check on paper."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from recsys.metrics.ranking import (
    EmptyEvaluationError,
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

LOG2_3 = math.log2(3)

# Customer A: hits at ranks 1 and 3, 2 relevant items.
# Customer B: one hit at rank 2, 3 relevant items (one, "z", never recommended).
# Customer C: no hits, 1 relevant item.
RECOMMENDED = [["a", "x", "b", "y"], ["p", "q", "r", "s"], ["m", "n", "o", "t"]]
RELEVANT = [{"a", "b"}, {"q", "z", "w"}, {"e"}]
K = 3


def test_precision_by_hand():
    # A: 2/3, B: 1/3, C: 0 -> mean = 1/3
    assert precision_at_k(RECOMMENDED, RELEVANT, K) == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)


def test_recall_by_hand():
    # A: 2/2, B: 1/3, C: 0/1 -> mean = (1 + 1/3) / 3
    assert recall_at_k(RECOMMENDED, RELEVANT, K) == pytest.approx((1 + 1 / 3 + 0) / 3)


def test_ndcg_by_hand():
    # A: DCG = 1/log2(2) + 1/log2(4) = 1 + 1/2; IDCG over min(3, 2) = 2 hits = 1 + 1/log2(3)
    ndcg_a = (1 + 1 / 2) / (1 + 1 / LOG2_3)
    # B: DCG = 1/log2(3); IDCG over min(3, 3) = 3 hits = 1 + 1/log2(3) + 1/2
    ndcg_b = (1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2)
    # C: no hits -> 0
    assert ndcg_at_k(RECOMMENDED, RELEVANT, K) == pytest.approx((ndcg_a + ndcg_b + 0) / 3)


def test_map_by_hand():
    # A: precision at hit ranks 1 and 3 = 1/1 and 2/3, divided by min(3, 2) = 2 -> (1 + 2/3) / 2 = 5/6
    # B: precision at hit rank 2 = 1/2, divided by min(3, 3) = 3 -> 1/6
    # C: 0
    assert map_at_k(RECOMMENDED, RELEVANT, K) == pytest.approx((5 / 6 + 1 / 6 + 0) / 3)


def test_map_divides_by_k_when_more_relevant_than_k():
    # 4 relevant, k = 2, both slots hit: (1/1 + 2/2) / min(2, 4) = 1, where dividing by |R| would give 1/2
    assert map_at_k([["a", "b", "c"]], [{"a", "b", "c", "d"}], 2) == pytest.approx(1.0)


def test_hit_rate_and_mrr_by_hand():
    # hit rate: A and B hit, C does not -> 2/3; MRR: A first hit at rank 1, B at rank 2 -> (1 + 1/2 + 0)/3
    assert hit_rate_at_k(RECOMMENDED, RELEVANT, K) == pytest.approx(2 / 3)
    assert mrr_at_k(RECOMMENDED, RELEVANT, K) == pytest.approx(0.5)


def test_cut_off_hides_hits_below_k():
    # At k = 1 only A's "a" counts: precision = (1 + 0 + 0)/3, MRR the same
    assert precision_at_k(RECOMMENDED, RELEVANT, 1) == pytest.approx(1 / 3)
    assert mrr_at_k(RECOMMENDED, RELEVANT, 1) == pytest.approx(1 / 3)


def test_k_larger_than_list_keeps_k_in_precision_denominator():
    # 2 items recommended, both relevant, k = 5: precision = 2/5, recall = 2/2
    # nDCG: DCG = 1 + 1/log2(3) and IDCG over min(5, 2) = 2 hits is the same -> 1
    # MAP: (1/1 + 2/2) / min(5, 2) = 1
    rec, rel = [["a", "b"]], [{"a", "b"}]
    assert precision_at_k(rec, rel, 5) == pytest.approx(2 / 5)
    assert recall_at_k(rec, rel, 5) == pytest.approx(1.0)
    assert ndcg_at_k(rec, rel, 5) == pytest.approx(1.0)
    assert map_at_k(rec, rel, 5) == pytest.approx(1.0)


def test_repeated_item_counts_once_but_takes_a_slot():
    # ["a", "a", "b"] with relevant {a, b}: hits at ranks 1 and 3 only
    rec, rel = [["a", "a", "b"]], [{"a", "b"}]
    assert hit_matrix(rec, rel, 3).tolist() == [[True, False, True]]
    assert precision_at_k(rec, rel, 3) == pytest.approx(2 / 3)
    assert recall_at_k(rec, rel, 3) == pytest.approx(1.0)
    # nDCG = (1 + 1/2) / (1 + 1/log2(3)), never above 1 however often "a" repeats
    assert ndcg_at_k(rec, rel, 3) == pytest.approx((1 + 1 / 2) / (1 + 1 / LOG2_3))
    assert ndcg_at_k([["a"] * 5], [{"a"}], 5) == pytest.approx(1.0)


def test_no_hits_anywhere_scores_zero():
    rec, rel = [["x", "y"], ["z"]], [{"a"}, {"b", "c"}]
    result = evaluate_rankings(rec, rel, ks=(2,))
    assert all(result[f"{m}@2"] == 0.0 for m in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr"))


def test_empty_relevant_sets_are_excluded_and_counted():
    # The second customer has nothing relevant: dropped, so precision is A's alone = 1/1
    rec, rel = [["a"], ["a"]], [{"a"}, set()]
    scores = ranking_scores(rec, rel, 1)
    assert scores.n_customers == 1
    assert scores.n_excluded == 1
    assert scores.kept.tolist() == [0]
    assert precision_at_k(rec, rel, 1) == pytest.approx(1.0)
    result = evaluate_rankings(rec, rel, ks=(1,))
    assert result["n_customers"] == 1
    assert result["n_excluded"] == 1


def test_empty_recommended_list_is_kept_as_zero():
    rec, rel = [["a"], []], [{"a"}, {"b"}]
    assert recall_at_k(rec, rel, 1) == pytest.approx(0.5)


def test_all_customers_excluded_raises():
    with pytest.raises(EmptyEvaluationError):
        ndcg_at_k([["a"]], [set()], 1)
    with pytest.raises(EmptyEvaluationError):
        evaluate_rankings([["a"]], [set()], ks=(1,))


def test_input_validation():
    with pytest.raises(ValueError, match="aligned"):
        precision_at_k([["a"]], [{"a"}, {"b"}], 1)
    with pytest.raises(ValueError, match="positive integer"):
        precision_at_k([["a"]], [{"a"}], 0)
    with pytest.raises(TypeError, match="string"):
        precision_at_k(["abc"], [{"a"}], 1)
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_rankings([["a"]], [{"a"}], metrics=("auc",))
    for ks in ((0, 5), (2.7, 5), (-2, 5)):  # every cut-off is checked, not only the largest
        with pytest.raises(ValueError, match="positive integer"):
            evaluate_rankings([[1, 2, 3]], [{1}], ks=ks)


@pytest.mark.parametrize("missing", [None, np.nan])
def test_a_missing_entry_is_a_miss_never_another_customers_item(missing):
    # factorize codes a missing value -1: it must not land on the previous customer's last item
    hits = hit_matrix([["b"], [missing]], [{"a"}, {"b"}], 1)
    assert hits.tolist() == [[False], [False]]
    assert hit_matrix([["a", missing, "b"]], [{"b"}], 3).tolist() == [[False, False, True]]


def test_evaluate_rankings_keys_and_values_match_single_metrics():
    result = evaluate_rankings(RECOMMENDED, RELEVANT, ks=(1, 3))
    expected = {f"{m}@{k}" for m in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr") for k in (1, 3)}
    assert set(result) == expected | {"n_customers", "n_excluded"}
    assert result["ndcg@3"] == pytest.approx(ndcg_at_k(RECOMMENDED, RELEVANT, 3))
    assert result["map@1"] == pytest.approx(map_at_k(RECOMMENDED, RELEVANT, 1))
    assert result["n_customers"] == 3


def test_accepts_integer_ids_and_numpy_rows():
    rec = np.array([[3, 1, 2], [5, 6, 7]])
    rel = [{1}, {7, 8}]
    # A: hit at rank 2 -> MRR 1/2; B: hit at rank 3 -> MRR 1/3
    assert mrr_at_k(rec, rel, 3) == pytest.approx((1 / 2 + 1 / 3) / 2)


def _reference(rec, rel, k):
    """A loop straight from the definitions, independent of the vectorised path."""
    out = {m: [] for m in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")}
    for items, truth in zip(rec, rel, strict=True):
        if not truth:
            continue
        seen, hits = set(), []
        for item in list(items)[:k]:
            hits.append(item in truth and item not in seen)
            seen.add(item)
        ranks = [r for r, h in enumerate(hits, start=1) if h]
        n = len(ranks)
        out["precision"].append(n / k)
        out["recall"].append(n / len(truth))
        idcg = sum(1 / math.log2(r + 1) for r in range(1, min(k, len(truth)) + 1))
        out["ndcg"].append(sum(1 / math.log2(r + 1) for r in ranks) / idcg)
        out["map"].append(sum((i + 1) / r for i, r in enumerate(ranks)) / min(k, len(truth)))
        out["hit_rate"].append(float(n > 0))
        out["mrr"].append(1 / ranks[0] if ranks else 0.0)
    return {m: sum(v) / len(v) for m, v in out.items()}


def test_vectorised_path_matches_reference_loop_on_random_lists():
    rng = random.Random(7)
    catalog = [f"i{j}" for j in range(30)]
    rec = [[rng.choice(catalog) for _ in range(rng.randint(0, 15))] for _ in range(200)]
    rel = [set(rng.sample(catalog, rng.randint(0, 8))) for _ in range(200)]
    for k in (1, 5, 10, 20):
        expected = _reference(rec, rel, k)
        result = evaluate_rankings(rec, rel, ks=(k,))
        for metric, value in expected.items():
            assert result[f"{metric}@{k}"] == pytest.approx(value), (metric, k)


def test_pinned_against_recommenders_python_evaluation():
    # Recommenders 1.2.1 python_evaluation.{precision,recall,ndcg,map}_at_k (relevancy_method="top_k")
    # on these lists, fed as rating_true with rating 1 and rating_pred with descending scores, gave
    # these values (agreeing with ours to 12 decimals when they were recorded).
    rng = random.Random(1)
    catalog = [f"i{j}" for j in range(40)]
    rec, rel = [], []
    for _ in range(150):
        rec.append(rng.sample(catalog, rng.randint(1, 25)))
        rel.append(set(rng.sample(catalog, rng.randint(1, 15))))
    pinned = {
        "precision@5": 0.172, "recall@5": 0.100399, "ndcg@5": 0.176814, "map@5": 0.100344,
        "precision@10": 0.146667, "recall@10": 0.170174, "ndcg@10": 0.175908, "map@10": 0.082238,
        "precision@20": 0.123, "recall@20": 0.320862, "ndcg@20": 0.231442, "map@20": 0.103301,
    }  # fmt: skip
    result = evaluate_rankings(rec, rel, ks=(5, 10, 20), metrics=("precision", "recall", "ndcg", "map"))
    for key, value in pinned.items():
        assert result[key] == pytest.approx(value, abs=5e-7), key


@pytest.mark.parametrize("missing", [None, np.nan])
def test_a_missing_entry_is_not_a_relevant_item(missing):
    assert recall_at_k([["a"]], [{"a", missing}], 1) == 1.0
    # |R| = 1: IDCG is one hit at rank 1, and MAP divides by min(2, 1)
    assert ndcg_at_k([["x", "a"]], [{"a", missing}], 2) == pytest.approx(1 / LOG2_3)
    assert map_at_k([["x", "a"]], [{"a", missing}], 2) == pytest.approx(0.5)
    # A set holding only a missing entry is empty: that customer is excluded, not scored 0
    scores = ranking_scores([["a"], ["a"]], [{"a"}, {missing}], 1)
    assert (scores.n_excluded, scores.mean("precision")) == (1, 1.0)
    assert evaluate_rankings([["a"], ["a"]], [{"a"}, {missing}], ks=(1,))["n_excluded"] == 1
