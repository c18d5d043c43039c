from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.repeat_buy import RepeatBuyRecommender
from tests.models.recommender_contract import N_ITEMS, RecommenderContract, group

NOW = pd.Timestamp("2024-03-31")


class TestRepeatBuyContract(RecommenderContract):
    def make_model(self):
        return RepeatBuyRecommender()

    def test_recommends_unseen_items_of_own_group(self, model, data, customers):
        # Repeat-buy only ever proposes items the customer bought: with exclude_seen nothing is left
        # (all -1, for a fallback to fill), and without it every item is one of their own group.
        rows, scores = model.recommend(customers, 3, exclude_seen=True)
        assert (rows == -1).all() and np.isneginf(scores).all()
        rows, _ = model.recommend(customers, N_ITEMS)
        bought = data.matrix.toarray() > 0
        for customer, row in zip(customers, rows, strict=True):
            real = row[row >= 0]
            assert sorted(real) == sorted(np.flatnonzero(bought[customer]))
            assert (group(real) == group(customer)).all()


def interactions(rows):
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP])
    frame[schema.TIMESTAMP] = NOW - pd.to_timedelta(frame[schema.TIMESTAMP], unit="D")
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame, reference_time=NOW)


# (order, customer, item, days before NOW): x often but long ago, y once and lately, z in between
HISTORY = [
    ("o1", "a", "x", 120), ("o2", "a", "x", 90), ("o3", "a", "x", 60),
    ("o3", "a", "x", 60),                                   # a second line of o3: still three orders
    ("o4", "a", "z", 45), ("o5", "a", "z", 30),
    ("o6", "a", "y", 1),
    ("o7", "b", "w", 0),
]


def ranked(model, data, customer="a"):
    rows, scores = model.fit(data).recommend(np.array([data.customers.index_of(customer)]), 4)
    return [data.items.ids[r] if r >= 0 else None for r in rows[0]], np.exp(scores[0])


def test_frequency_times_recency_decay():
    # x: 3 * 0.5 ** (60 / 30) = 0.75, y: 1 * 0.5 ** (1 / 30) = 0.977, z: 2 * 0.5 ** (30 / 30) = 1.0
    items, scores = ranked(RepeatBuyRecommender(recency_half_life_days=30, frequency_weight=1), interactions(HISTORY))
    assert items == ["z", "y", "x", None]
    np.testing.assert_allclose(scores[:3], [1.0, 0.5 ** (1 / 30), 0.75], rtol=1e-6)
    assert scores[3] == 0.0, "w was never bought by a: -inf, exp -> 0"


def test_recency_alone_and_frequency_alone():
    data = interactions(HISTORY)
    assert ranked(RepeatBuyRecommender(recency_half_life_days=30, frequency_weight=0), data)[0][:3] == ["y", "z", "x"]
    items, scores = ranked(RepeatBuyRecommender(recency_half_life_days=None), data)
    assert items[:3] == ["x", "z", "y"]
    np.testing.assert_allclose(scores[:3], [3.0, 2.0, 1.0], rtol=1e-6)


def test_a_purchase_at_reference_time_scores_zero_but_counts():
    data = interactions(HISTORY)
    model = RepeatBuyRecommender().fit(data)
    rows, scores = model.recommend(np.array([data.customers.index_of("b")]), 2)
    assert data.items.ids[rows[0, 0]] == "w" and scores[0, 0] == 0.0
    assert rows[0, 1] == -1


def test_very_old_purchases_keep_their_order():
    data = interactions([("o1", "a", "x", 5000), ("o2", "a", "x", 4999), ("o3", "a", "y", 4000)])
    items, _ = ranked(RepeatBuyRecommender(recency_half_life_days=7), data)
    assert items[:2] == ["y", "x"]


@pytest.mark.parametrize("params", [{"recency_half_life_days": 0}, {"frequency_weight": -1}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        RepeatBuyRecommender(**params)
