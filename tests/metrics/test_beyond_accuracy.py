"""Coverage, novelty and intra-list diversity against answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.metrics.beyond_accuracy import (
    catalog_coverage_at_k,
    intra_list_diversity_at_k,
    item_choice_probability,
    novelty_at_k,
)
from recsys.metrics.ranking import EmptyEvaluationError

# Interactions: u1 bought a, b (and a again); u2 bought a; u3 bought a, c.
# Distinct (customer, item) pairs: 5. Buyers: a = 3, b = 1, c = 1.
CUSTOMERS = ["u1", "u1", "u2", "u3", "u3", "u1"]
ITEMS = ["a", "b", "a", "a", "c", "a"]


def test_catalog_coverage_by_hand():
    rec = [["a", "b", "c"], ["a", "d", "e"]]
    # top 2: {a, b, d} = 3 of 6; top 3: {a, b, c, d, e} = 5 of 6
    assert catalog_coverage_at_k(rec, 6, 2) == pytest.approx(3 / 6)
    assert catalog_coverage_at_k(rec, 6, 3) == pytest.approx(5 / 6)
    # k beyond the lists changes nothing
    assert catalog_coverage_at_k(rec, 6, 50) == pytest.approx(5 / 6)
    with pytest.raises(ValueError):
        catalog_coverage_at_k(rec, 0, 2)


def test_item_choice_probability_by_hand():
    # interactions: a = 3/5, b = 1/5, c = 1/5 (the repeated u1-a pair counts once)
    assert item_choice_probability(CUSTOMERS, ITEMS) == pytest.approx({"a": 3 / 5, "b": 1 / 5, "c": 1 / 5})
    # customers: a = 3/3, b = 1/3, c = 1/3
    assert item_choice_probability(CUSTOMERS, ITEMS, denominator="customers") == pytest.approx(
        {"a": 1.0, "b": 1 / 3, "c": 1 / 3}
    )
    with pytest.raises(ValueError):
        item_choice_probability(CUSTOMERS, ITEMS, denominator="users")


def test_novelty_by_hand():
    p = item_choice_probability(CUSTOMERS, ITEMS)
    rec = [["a", "b"], ["c", "a"]]
    # four recommendations: a twice at -log2(3/5), b and c at -log2(1/5)
    expected = (2 * math.log2(5 / 3) + 2 * math.log2(5)) / 4
    assert novelty_at_k(rec, p, 2) == pytest.approx(expected)
    # the same from raw buyer counts divided by the 5 distinct interactions
    assert novelty_at_k(rec, {"a": 3, "b": 1, "c": 1}, 2, total=5) == pytest.approx(expected)
    # k = 1 keeps a and c: (log2(5/3) + log2(5)) / 2
    assert novelty_at_k(rec, p, 1) == pytest.approx((math.log2(5 / 3) + math.log2(5)) / 2)


def test_novelty_repeat_within_list_counts_once():
    # ["b", "b", "a"] -> {b, a}: (log2(5) + log2(5/3)) / 2
    p = {"a": 3 / 5, "b": 1 / 5}
    assert novelty_at_k([["b", "b", "a"]], p, 3) == pytest.approx((math.log2(5) + math.log2(5 / 3)) / 2)


def test_novelty_unknown_items_raise_or_are_skipped():
    p = {"a": 0.5}
    with pytest.raises(ValueError, match="no popularity"):
        novelty_at_k([["a", "zz"]], p, 2)
    # skipping leaves a alone: -log2(1/2) = 1
    assert novelty_at_k([["a", "zz"]], p, 2, unknown="skip") == pytest.approx(1.0)
    with pytest.raises(EmptyEvaluationError):
        novelty_at_k([["zz"]], p, 1, unknown="skip")


def test_novelty_rejects_counts_without_total():
    with pytest.raises(ValueError, match="total="):
        novelty_at_k([["a"]], {"a": 3}, 1)


def _item_customer_matrix():
    # rows a, b, c, d; columns u1, u2, u3; d was never bought (a zero row)
    dense = np.array([[1, 1, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=float)
    return sp.csr_matrix(dense), {"a": 0, "b": 1, "c": 2, "d": 3}


def test_intra_list_diversity_by_hand():
    matrix, index = _item_customer_matrix()
    # cos(a, b) = 1 co-buyer / sqrt(3 * 1) = 1/sqrt(3); cos(a, c) = 1/sqrt(3); cos(b, c) = 0
    # [a, b, c]: 1 - (2/sqrt(3)) / 3 pairs; [a, b]: 1 - 1/sqrt(3); [a] has no pair and is left out
    list_abc = 1 - (2 / math.sqrt(3)) / 3
    list_ab = 1 - 1 / math.sqrt(3)
    result = intra_list_diversity_at_k([["a", "b", "c"], ["a", "b"], ["a"]], matrix, index, 3)
    assert result == pytest.approx((list_abc + list_ab) / 2)
    # k = 2 cuts the first list to [a, b]
    assert intra_list_diversity_at_k([["a", "b", "c"]], matrix, index, 2) == pytest.approx(list_ab)


def test_intra_list_diversity_zero_row_and_duplicates():
    matrix, index = _item_customer_matrix()
    # d has no buyers: similarity 0, diversity 1
    assert intra_list_diversity_at_k([["a", "d"]], matrix, index, 2) == pytest.approx(1.0)
    # a repeated item is one item: [a, a, b] is the pair (a, b)
    result = intra_list_diversity_at_k([["a", "a", "b"]], matrix, index, 3)
    assert result == pytest.approx(1 - 1 / math.sqrt(3))


def test_intra_list_diversity_dense_feature_vectors():
    # cos([1, 0], [1, 1]) = 1/sqrt(2); scale does not matter
    vectors = np.array([[2.0, 0.0], [3.0, 3.0]])
    assert intra_list_diversity_at_k([["x", "y"]], vectors, {"x": 0, "y": 1}, 2) == pytest.approx(1 - 1 / math.sqrt(2))


def test_intra_list_diversity_errors():
    matrix, index = _item_customer_matrix()
    with pytest.raises(KeyError, match="zz"):
        intra_list_diversity_at_k([["a", "zz"]], matrix, index, 2)
    with pytest.raises(EmptyEvaluationError):
        intra_list_diversity_at_k([["a"], ["b", "b"]], matrix, index, 2)


@pytest.mark.parametrize("missing", [None, np.nan])
def test_a_missing_entry_takes_a_slot_but_is_no_item(missing):
    assert catalog_coverage_at_k([["a", missing]], 1, 2) == 1.0
    assert catalog_coverage_at_k([["a", missing, "b"]], 2, 2) == pytest.approx(1 / 2)
    assert novelty_at_k([["a", missing]], {"a": 0.5}, 2) == pytest.approx(1.0)
    matrix, index = _item_customer_matrix()
    assert intra_list_diversity_at_k([["a", missing, "b"]], matrix, index, 3) == pytest.approx(1 - 1 / math.sqrt(3))


def test_novelty_nan_probability_is_unknown():
    p = {"a": 0.5, "b": float("nan")}
    with pytest.raises(ValueError, match="no popularity"):
        novelty_at_k([["a", "b"]], p, 2)
    assert novelty_at_k([["a", "b"]], p, 2, unknown="skip") == pytest.approx(1.0)
