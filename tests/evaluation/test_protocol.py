"""The temporal protocol on a toy shop small enough to score by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.evaluation.protocol import TemporalProtocol, evaluate, evaluate_settings, make_fold
from recsys.models.popularity import PopularityRecommender

CUTOFF = pd.Timestamp("2024-02-01")


def toy_transactions() -> pd.DataFrame:
    """Train (January): a buys x, y (y again on the 25th); b buys y; c buys z; e buys x.
    Evaluation (February): a buys x, z; b buys w (an item nobody bought before); d (new) buys x; e buys x.
    March: a buys y (outside a window that ends on March 1st).
    """
    rows = [
        ("o1", "a", "x", "2024-01-05"), ("o1", "a", "y", "2024-01-05"), ("o2", "b", "y", "2024-01-10"),
        ("o3", "c", "z", "2024-01-11"), ("o4", "e", "x", "2024-01-20"),
        ("o4a", "a", "y", "2024-01-25"),
        ("o5", "a", "x", "2024-02-03"), ("o5", "a", "z", "2024-02-03"), ("o6", "a", "z", "2024-02-09"),
        ("o7", "b", "w", "2024-02-04"), ("o8", "d", "x", "2024-02-05"), ("o9", "e", "x", "2024-02-06"),
        ("o10", "a", "y", "2024-03-02"),
    ]
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP])
    frame[schema.TIMESTAMP] = pd.to_datetime(frame[schema.TIMESTAMP])
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return frame


@pytest.fixture
def fold():
    return make_fold(toy_transactions(), CUTOFF, "2024-03-01", name="toy")


def fixed_lists(customers: np.ndarray, k: int, exclude_seen: bool, *, fold) -> np.ndarray:
    """Everyone gets x, z, y in that order; with exclude_seen the customer's own items drop out."""
    seen = fold.train.matrix.toarray() > 0
    out = np.full((len(customers), k), -1, dtype=np.int64)
    for i, customer in enumerate(customers):
        items = [item for item in (0, 2, 1) if not (exclude_seen and seen[customer, item])]
        out[i, : len(items)] = items[:k]
    return out


def test_fold_keeps_customers_with_both_sides_and_their_window_items(fold):
    # train customers a, b, c, e -> rows 0, 1, 2, 3; items x, y, z -> rows 0, 1, 2; w is new -> row 3
    assert fold.train.customers.ids.tolist() == ["a", "b", "c", "e"]
    assert fold.train.items.ids.tolist() == ["x", "y", "z"]
    assert fold.train.reference_time == CUTOFF
    assert fold.customers.tolist() == [0, 1, 3]  # c bought nothing in February, d nothing before
    assert fold.relevant == (frozenset({0, 2}), frozenset({3}), frozenset({0}))


def test_setting_b_removes_train_items_and_drops_empty_customers(fold):
    customers, relevant = fold.ground_truth("B")
    assert customers.tolist() == [0, 1]  # e only re-bought x
    assert relevant == [frozenset({2}), frozenset({3})]


def test_setting_a_metrics_by_hand(fold):
    # a: hits x, z at ranks 1, 2 of 2 relevant -> ndcg 1, recall 1, precision 2/10, AP 1
    # b: only w, which no list can hold -> all 0
    # e: hit x at rank 1 of 1 -> ndcg 1, recall 1, precision 1/10, AP 1
    result = evaluate(lambda c, k, ex: fixed_lists(c, k, ex, fold=fold), fold, "A")
    assert result["n_customers"] == 3
    assert result["ndcg@10"] == pytest.approx(2 / 3)
    assert result["recall@10"] == pytest.approx(2 / 3)
    assert result["recall@20"] == pytest.approx(2 / 3)
    assert result["precision@10"] == pytest.approx(0.3 / 3)
    assert result["map@10"] == pytest.approx(2 / 3)
    assert result["coverage@10"] == pytest.approx(3 / 3)


def test_setting_b_metrics_by_hand(fold):
    # a's list is [z] (x, y bought) -> hit at rank 1; b's list is [x, z] against {w} -> 0
    result = evaluate(lambda c, k, ex: fixed_lists(c, k, ex, fold=fold), fold, "B")
    assert result["n_customers"] == 2
    assert result["ndcg@10"] == pytest.approx(0.5)
    assert result["recall@10"] == pytest.approx(0.5)
    assert result["precision@10"] == pytest.approx(0.05)
    assert result["map@10"] == pytest.approx(0.5)
    assert result["coverage@10"] == pytest.approx(2 / 3)


def test_setting_b_refuses_lists_with_bought_items(fold):
    with pytest.raises(ValueError, match="exclude_seen"):
        evaluate(lambda c, k, ex: fixed_lists(c, k, False, fold=fold), fold, "B")


def test_a_recommender_is_evaluated_through_recommend(fold):
    # popularity by customers: x (a, e) = 2, y (a, b) = 2, z (c) = 1 -> x, y, z
    model = PopularityRecommender().fit(fold.train)
    both = evaluate_settings(model, fold, ks=(1, 3))
    # A, k=1: a hit x (ndcg 1), b 0, e hit x (1)
    assert both["A"]["ndcg@1"] == pytest.approx(2 / 3)
    assert both["A"]["coverage@1"] == pytest.approx(1 / 3)
    # B, k=3: a gets [z] -> hit; b gets [x, z] -> none
    assert both["B"]["recall@3"] == pytest.approx(0.5)


def test_protocol_cuts_validation_and_test_folds():
    protocol = TemporalProtocol(validation_cutoff="2024-01-08", test_cutoff=CUTOFF, end="2024-03-01")
    folds = protocol.folds(toy_transactions())
    validation, test = folds["validation"], folds["test"]
    # validation trains on a's first order only and scores a's repeat of y before the test cutoff
    assert validation.train.customers.ids.tolist() == ["a"]
    assert validation.train.items.ids.tolist() == ["x", "y"]
    assert validation.customers.tolist() == [0] and validation.relevant == (frozenset({1}),)
    assert validation.ground_truth("B")[0].size == 0
    assert validation.end == CUTOFF and test.cutoff == CUTOFF and test.end == pd.Timestamp("2024-03-01")
    assert test.relevant == make_fold(toy_transactions(), CUTOFF, "2024-03-01").relevant


def test_open_ended_test_window_reaches_the_last_row():
    fold = make_fold(toy_transactions(), CUTOFF)
    assert fold.relevant[0] == frozenset({0, 1, 2})  # a's March purchase of y counts


@pytest.mark.parametrize(("validation", "test", "end"), [("2024-02-01", "2024-01-01", None),
                                                         ("2024-01-01", "2024-02-01", "2024-02-01")])
def test_dates_out_of_order_are_refused(validation, test, end):
    with pytest.raises(ValueError, match="must be"):
        TemporalProtocol(validation, test, end)


def test_unknown_setting_is_refused(fold):
    with pytest.raises(ValueError, match="setting"):
        evaluate(lambda c, k, ex: fixed_lists(c, k, ex, fold=fold), fold, "C")


def test_an_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty side"):
        make_fold(toy_transactions(), "2025-01-01")


def test_a_window_without_returning_customers_is_refused():
    with pytest.raises(ValueError, match="bought before"):
        make_fold(toy_transactions(), "2024-01-15", "2024-01-24")


def test_a_cutoff_with_a_time_zone_is_taken_in_utc(fold):
    # the loaders keep timestamps as naive UTC: 2024-02-01T02:00+02:00 is the same instant as the cutoff
    aware = make_fold(toy_transactions(), "2024-02-01T02:00:00+02:00", "2024-03-01T00:00:00Z", name="toy")
    assert aware.cutoff == fold.cutoff and aware.end == fold.end
    assert aware.train.matrix.nnz == fold.train.matrix.nnz
