from __future__ import annotations

import pandas as pd
import pytest

from experiments.config import LeaveLastOutConfig, StratifiedConfig, TemporalConfig
from experiments.folds import make_folds
from recsys.data import generate_transactions
from recsys.evaluation import TemporalProtocol
from recsys.evaluation.protocol import fold_from_frames


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    frame = generate_transactions(n_customers=300, n_items=60, seed=2)
    return frame[~frame["order_id"].str.startswith("C")].reset_index(drop=True)


@pytest.mark.parametrize("protocol", [StratifiedConfig(kind="stratified", ratio=0.7, seed=3),
                                      LeaveLastOutConfig(kind="leave_last_out", n=1)])
def test_validation_is_carved_from_the_test_folds_training_side(transactions, protocol):
    folds = make_folds(transactions, protocol)
    validation, test = folds["validation"], folds["test"]
    # the test fold trains on train + validation, so it has more rows than the validation fold trains on
    assert len(validation.train.transactions) < len(test.train.transactions) < len(transactions)
    assert set(validation.train.customers.ids) <= set(test.train.customers.ids)
    for fold in (validation, test):
        assert len(fold.customers) == len(fold.relevant) > 0
        assert all(fold.relevant)
        assert (fold.customers[:-1] < fold.customers[1:]).all()


def test_stratified_folds_repeat_for_the_same_seed(transactions):
    protocol = StratifiedConfig(kind="stratified", ratio=0.75, seed=9)
    first, second = make_folds(transactions, protocol), make_folds(transactions, protocol)
    for name in ("validation", "test"):
        assert (first[name].customers == second[name].customers).all()
        assert first[name].relevant == second[name].relevant


def test_temporal_protocol_is_the_shared_one(transactions):
    config = TemporalConfig(kind="temporal", validation_cutoff="2024-06-01", test_cutoff="2024-09-01")
    folds = make_folds(transactions, config)
    expected = TemporalProtocol("2024-06-01", "2024-09-01").folds(transactions)
    for name in ("validation", "test"):
        assert (folds[name].customers == expected[name].customers).all()
        assert folds[name].relevant == expected[name].relevant


def test_held_out_items_unknown_to_training_still_count_towards_the_relevant_set():
    row = {"quantity": 1.0, "unit_price": 1.0, "timestamp": pd.Timestamp("2024-01-01")}
    train = pd.DataFrame([{**row, "order_id": "1", "customer_id": "a", "item_id": "x"},
                          {**row, "order_id": "2", "customer_id": "b", "item_id": "y"}])
    held_out = pd.DataFrame([{**row, "order_id": "3", "customer_id": "a", "item_id": "y"},
                             {**row, "order_id": "3", "customer_id": "a", "item_id": "new"},
                             {**row, "order_id": "4", "customer_id": "stranger", "item_id": "x"}])
    fold = fold_from_frames(train, held_out, name="check")
    assert fold.customers.tolist() == [0]  # 'stranger' has no training row
    assert fold.relevant == (frozenset({1, 2}),)  # y is row 1; 'new' gets the first row past the catalogue
    with pytest.raises(ValueError, match="empty side"):
        fold_from_frames(train, held_out.iloc[:0], name="check")


def test_min_rating_chooses_the_customers_of_both_folds_once(transactions):
    folds = make_folds(transactions, StratifiedConfig(kind="stratified", ratio=0.75, seed=3, min_rating=4))
    kept = transactions.groupby("customer_id").size()
    kept = set(kept[kept >= 4].index)
    # a customer with 4 rows keeps 3 for training after the test split: still in the validation fold
    assert set(folds["test"].train.customers.ids) == kept
    assert set(folds["validation"].train.customers.ids) == kept
