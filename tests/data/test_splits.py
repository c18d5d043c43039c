"""Splitters: exact boundaries on hand-made frames, then leakage, size and determinism properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import CUSTOMER_ID, ITEM_ID, ORDER_ID, TIMESTAMP
from recsys.data.splits import (
    holdout_customers,
    leave_last_out,
    relevant_items,
    stratified_split,
    temporal_split,
)


def _frame(rows):
    frame = pd.DataFrame(rows, columns=[ORDER_ID, CUSTOMER_ID, ITEM_ID, TIMESTAMP])
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], format="ISO8601")
    return frame.astype({ORDER_ID: "string", CUSTOMER_ID: "string", ITEM_ID: "string"})


# c1: three orders (o1 two lines); c2: two orders at the same instant; c3: a single order.
TRANSACTIONS = _frame(
    [
        ("o1", "c1", "a", "2024-01-01 10:00"),
        ("o1", "c1", "b", "2024-01-01 10:00"),
        ("o2", "c1", "c", "2024-01-05"),
        ("o3", "c1", "a", "2024-02-01"),
        ("o5", "c2", "d", "2024-01-10"),
        ("o4", "c2", "e", "2024-01-10"),
        ("o6", "c3", "a", "2024-01-20"),
    ]
)


def _random_frame(n_rows=2000, n_customers=150, n_items=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.array([f"c{x}" for x in rng.integers(0, n_customers, n_rows)], dtype="string"),
            ITEM_ID: pd.array([f"i{x}" for x in rng.integers(0, n_items, n_rows)], dtype="string"),
            "row": np.arange(n_rows),
        }
    )


def test_temporal_split_boundaries():
    train, test = temporal_split(TRANSACTIONS, "2024-01-10", end="2024-02-01")
    # strictly before the cut-off: o1's two lines and o2
    assert sorted(train[ORDER_ID]) == ["o1", "o1", "o2"]
    # from the cut-off (inclusive: both c2 rows at exactly 10 January) up to end (exclusive: o3 is out)
    assert sorted(test[ORDER_ID]) == ["o4", "o5", "o6"]
    _, open_ended = temporal_split(TRANSACTIONS, "2024-01-10")
    assert sorted(open_ended[ORDER_ID]) == ["o3", "o4", "o5", "o6"]
    with pytest.raises(ValueError, match="after cutoff"):
        temporal_split(TRANSACTIONS, "2024-01-10", end="2024-01-10")


def test_leave_last_out_by_order_by_hand():
    train, test = leave_last_out(TRANSACTIONS, n=1)
    # c1: last order o3 held out; c2: tie at 10 January broken by order id, so o5 (> o4) is last;
    # c3: one order, not more than n, so wholly in train
    assert sorted(test[ORDER_ID]) == ["o3", "o5"]
    assert sorted(train[ORDER_ID].unique()) == ["o1", "o2", "o4", "o6"]
    assert len(train) + len(test) == len(TRANSACTIONS)


def test_leave_last_out_keeps_order_lines_together_and_n_two():
    # n = 2: c1 has 3 orders, so o2 and o3 go to test; c2 has exactly 2 orders and stays in train
    train, test = leave_last_out(TRANSACTIONS, n=2)
    assert sorted(test[ORDER_ID]) == ["o2", "o3"]
    assert set(train[CUSTOMER_ID]) == {"c1", "c2", "c3"}
    # the last order has two lines, one a second later: the order's time is its earliest line, and
    # both lines go to test together
    frame = _frame(
        [
            ("o1", "c1", "a", "2024-01-01"),
            ("o2", "c1", "b", "2024-01-02 00:00:00"),
            ("o2", "c1", "c", "2024-01-02 00:00:01"),
        ]
    )
    train, test = leave_last_out(frame, n=1)
    assert test[ITEM_ID].tolist() == ["b", "c"]
    assert train[ITEM_ID].tolist() == ["a"]


def test_leave_last_out_does_not_depend_on_row_order():
    shuffled = TRANSACTIONS.sample(frac=1.0, random_state=3)
    _, test_a = leave_last_out(TRANSACTIONS, n=1)
    _, test_b = leave_last_out(shuffled, n=1)
    assert sorted(test_a[ORDER_ID]) == sorted(test_b[ORDER_ID])


def test_leave_last_out_by_row_breaks_ties_by_position():
    # c1 rows: a, b (10:00), c, a; last row is the second "a"; c2's two rows tie, the later position wins
    _, test = leave_last_out(TRANSACTIONS, n=1, by="row")
    assert test.index.tolist() == [3, 5]


def test_leave_last_out_has_no_leakage_on_random_orders():
    rng = np.random.default_rng(5)
    n = 600
    frame = pd.DataFrame(
        {
            ORDER_ID: [f"o{x}" for x in rng.integers(0, 200, n)],
            ITEM_ID: [f"i{x}" for x in rng.integers(0, 30, n)],
        }
    )
    frame[CUSTOMER_ID] = "c" + (frame[ORDER_ID].str[1:].astype(int) % 40).astype(str)
    frame[TIMESTAMP] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame[ORDER_ID].str[1:].astype(int) % 17, unit="D")
    train, test = leave_last_out(frame, n=2)
    assert set(train.index).isdisjoint(test.index)
    assert len(train) + len(test) == len(frame)
    for customer, held in test.groupby(CUSTOMER_ID):
        kept = train[train[CUSTOMER_ID] == customer]
        assert held[ORDER_ID].nunique() == 2
        assert kept[TIMESTAMP].max() <= held[TIMESTAMP].min()
        assert kept[ORDER_ID].nunique() >= 1


def test_stratified_split_per_customer_counts():
    frame = _random_frame()
    train, test = stratified_split(frame, ratio=0.75, seed=42)
    sizes = frame.groupby(CUSTOMER_ID).size()
    in_train = train.groupby(CUSTOMER_ID).size().reindex(sizes.index, fill_value=0)
    # round half to even of 0.75 * m rows per customer
    assert (in_train == np.round(0.75 * sizes)).all()
    assert set(train["row"]).isdisjoint(test["row"])
    assert len(train) + len(test) == len(frame)
    # the outputs keep the input's row order
    assert train["row"].is_monotonic_increasing and test["row"].is_monotonic_increasing


def test_stratified_split_small_groups_by_hand():
    # at 0.75: 1 row -> round(0.75) = 1 in train; 2 rows -> round(1.5) = 2; 6 rows -> round(4.5) = 4
    frame = pd.DataFrame({CUSTOMER_ID: ["a"] + ["b"] * 2 + ["c"] * 6, ITEM_ID: list("xyzuvwpqr")})
    train, test = stratified_split(frame, ratio=0.75, seed=0)
    assert train[CUSTOMER_ID].value_counts().to_dict() == {"a": 1, "b": 2, "c": 4}
    assert test[CUSTOMER_ID].tolist() == ["c", "c"]


def test_stratified_split_is_deterministic_per_seed():
    frame = _random_frame()
    train_a, _ = stratified_split(frame, seed=11)
    train_b, _ = stratified_split(frame, seed=11)
    train_c, _ = stratified_split(frame, seed=12)
    assert train_a["row"].tolist() == train_b["row"].tolist()
    assert train_a["row"].tolist() != train_c["row"].tolist()


def test_stratified_split_min_rating_and_item_stratification():
    frame = _random_frame()
    train, test = stratified_split(frame, ratio=0.5, min_rating=15)
    sizes = frame.groupby(CUSTOMER_ID).size()
    kept = set(sizes[sizes >= 15].index)
    assert set(train[CUSTOMER_ID]) | set(test[CUSTOMER_ID]) == kept
    assert len(train) + len(test) == int(sizes[sizes >= 15].sum())

    train, _ = stratified_split(frame, ratio=0.8, filter_by="item")
    item_sizes = frame.groupby(ITEM_ID).size()
    in_train = train.groupby(ITEM_ID).size().reindex(item_sizes.index, fill_value=0)
    assert (in_train == np.round(0.8 * item_sizes)).all()


def test_stratified_split_custom_columns_and_input_untouched():
    frame = _random_frame().rename(columns={CUSTOMER_ID: "userID", ITEM_ID: "itemID"})
    before = frame.copy()
    train, test = stratified_split(frame, col_user="userID", col_item="itemID")
    pd.testing.assert_frame_equal(frame, before)
    assert list(train.columns) == list(frame.columns)
    with pytest.raises(KeyError):
        stratified_split(frame)


def test_stratified_split_validation():
    frame = _random_frame(n_rows=20)
    for bad in (1, 0.0, 1.0, [0.5, 0.5]):
        with pytest.raises(ValueError, match="ratio"):
            stratified_split(frame, ratio=bad)
    with pytest.raises(ValueError, match="filter_by"):
        stratified_split(frame, filter_by="customer")
    with pytest.raises(ValueError, match="min_rating"):
        stratified_split(frame, min_rating=0)


def test_relevant_items_and_holdout_customers():
    train, test = leave_last_out(TRANSACTIONS, n=1)
    assert relevant_items(test) == {"c1": {"a"}, "c2": {"d"}}
    # customers given: exactly those keys in that order, empty set where the test has nothing
    truth = relevant_items(test, customers=["c3", "c1"])
    assert list(truth) == ["c3", "c1"]
    assert truth == {"c3": set(), "c1": {"a"}}
    assert holdout_customers(train, test) == ["c1", "c2"]
    _, later = temporal_split(TRANSACTIONS, "2024-01-15")
    assert holdout_customers(TRANSACTIONS[TRANSACTIONS[CUSTOMER_ID] != "c3"], later) == ["c1"]


def test_stratified_split_pinned_against_recommenders():
    # Recommenders 1.2.1 python_stratified_split(ratio=0.75, seed=42) on this frame put 2242 rows in
    # train and 758 in test, the test starting with these row labels; the row sets agreed in full.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: pd.array([f"c{x}" for x in rng.integers(0, 600, 3000)], dtype="string"),
            ITEM_ID: pd.array([f"i{x}" for x in rng.integers(0, 100, 3000)], dtype="string"),
        }
    )
    train, test = stratified_split(frame, ratio=0.75, seed=42)
    assert (len(train), len(test)) == (2242, 758)
    assert test.index[:8].tolist() == [1, 7, 11, 12, 17, 18, 25, 30]


def test_temporal_split_takes_a_cutoff_with_a_time_zone_in_utc():
    # 2024-01-10 01:00+02:00 is 2024-01-09 23:00 UTC: c2's orders at midnight of the 10th fall after it.
    train, test = temporal_split(TRANSACTIONS, "2024-01-10T01:00:00+02:00", end="2024-02-01T00:00:00+00:00")
    assert sorted(train[ORDER_ID]) == ["o1", "o1", "o2"]
    assert sorted(test[ORDER_ID]) == ["o4", "o5", "o6"]
    train, _ = temporal_split(TRANSACTIONS, pd.Timestamp("2024-01-09 23:30", tz="America/New_York"))
    assert sorted(train[ORDER_ID]) == ["o1", "o1", "o2", "o4", "o5"]
