from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.popularity import PopularityRecommender
from tests.models.recommender_contract import RecommenderContract

NOW = pd.Timestamp("2024-03-31")


class TestPopularityContract(RecommenderContract):
    def make_model(self):
        return PopularityRecommender()

    def test_recommends_unseen_items_of_own_group(self, model, data, customers):
        # Popularity ignores who is asking: the contract's own-group answer does not apply. Instead,
        # each list is the global ranking with the customer's own purchases taken out.
        ranking, _ = model.recommend(np.array([0]), data.n_items)
        ranking = ranking[0][ranking[0] >= 0]
        rows, _ = model.recommend(customers, 5, exclude_seen=True)
        bought = data.matrix.toarray() > 0
        for customer, row in zip(customers, rows, strict=True):
            np.testing.assert_array_equal(row, ranking[~bought[customer, ranking]][:5])


def transactions(rows):
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP])
    frame[schema.TIMESTAMP] = NOW - pd.to_timedelta(frame[schema.TIMESTAMP], unit="D")
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame, reference_time=NOW)


# (order, customer, item, days before NOW)
HISTORY = [
    ("o1", "a", "x", 40), ("o1", "a", "y", 40),
    ("o2", "a", "x", 35),                     # a buys x again: still one customer for x
    ("o3", "b", "x", 50),
    ("o4", "c", "x", 20),
    ("o5", "b", "y", 2), ("o5", "b", "z", 2), ("o6", "c", "z", 1), ("o7", "a", "z", 7),
    ("o8", "a", "w", 7.5),                    # just outside a 7-day window
]


def ranking(model, data):
    rows, scores = model.fit(data).recommend(np.array([0]), 4)
    return [data.items.ids[r] if r >= 0 else None for r in rows[0]], scores[0].tolist()


def test_counts_distinct_customers():
    data = transactions(HISTORY)
    assert ranking(PopularityRecommender(), data) == (["x", "z", "y", "w"], [3.0, 3.0, 2.0, 1.0])


def test_counts_distinct_orders():
    data = transactions(HISTORY)
    assert ranking(PopularityRecommender(by="orders"), data) == (["x", "z", "y", "w"], [4.0, 3.0, 2.0, 1.0])


def test_window_counts_only_recent_purchases_and_drops_the_rest():
    data = transactions(HISTORY)
    # the window is (NOW - 7 days, NOW]: a's purchase of z exactly 7 days ago falls outside it
    items, scores = ranking(PopularityRecommender(window_days=7), data)
    assert items == ["z", "y", None, None]
    assert scores == [2.0, 1.0, float("-inf"), float("-inf")]
    assert ranking(PopularityRecommender(window_days=8), data)[0] == ["z", "w", "y", None]


def test_same_list_for_everyone_until_seen_items_are_excluded():
    data = transactions(HISTORY)
    model = PopularityRecommender().fit(data)
    rows, _ = model.recommend(np.arange(data.n_customers), 2)
    assert (rows == rows[0]).all()
    rows, _ = model.recommend(np.array([data.customers.index_of("c")]), 3, exclude_seen=True)
    assert rows[0][:2].tolist() == [data.items.index_of("y"), data.items.index_of("w")]
    assert rows[0][2] == -1, "c bought the other two items"


@pytest.mark.parametrize("params", [{"by": "quantity"}, {"window_days": 0}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        PopularityRecommender(**params)


def test_an_item_bought_with_a_net_weight_of_zero_is_still_excluded():
    frame = pd.DataFrame([("o1", "c1", "a", 2.0), ("o2", "c1", "a", -2.0), ("o1", "c1", "b", 1.0),
                          ("o3", "c2", "a", 1.0), ("o3", "c2", "b", 1.0)],
                         columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.QUANTITY])
    frame[schema.TIMESTAMP] = NOW - pd.Timedelta(days=1)
    frame[schema.UNIT_PRICE] = 1.0
    data = build_interactions(frame, weighting="quantity", reference_time=NOW)  # c1's a is stored as 0.0
    rows, _ = PopularityRecommender().fit(data).recommend(np.array([data.customers.index_of("c1")]), 2,
                                                          exclude_seen=True)
    assert rows.tolist() == [[-1, -1]]  # c1 bought both items
