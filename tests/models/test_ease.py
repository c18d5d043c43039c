from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.base import ModelFitError
from recsys.models.ease import EASERecommender
from tests.models.recommender_contract import RecommenderContract, checkerboard


class TestEASEContract(RecommenderContract):
    def make_model(self):
        return EASERecommender(l2=10.0)


class TestRecencyWeightedEASEContract(RecommenderContract):
    def make_model(self):
        return EASERecommender(l2=10.0, binary=False, recency_half_life_days=30.0)


def tiny():
    """Customers a, b, c over items x, y, z: a: x y, b: x y z (y twice), c: z."""
    rows = [("o1", "a", "x"), ("o1", "a", "y"), ("o2", "b", "x"), ("o2", "b", "y"), ("o3", "b", "y"),
            ("o3", "b", "z"), ("o4", "c", "z")]
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID])
    frame[schema.TIMESTAMP] = pd.Timestamp("2024-01-01")
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame)


def test_closed_form_by_hand():
    # binary X (rows a, b, c; columns x, y, z) = [[1,1,0],[1,1,1],[0,0,1]]
    # X'X = [[2,2,1],[2,2,1],[1,1,2]]; with l2 = 1: G = [[3,2,1],[2,3,1],[1,1,3]], det G = 13
    # P = G^-1 = adj(G) / 13 = [[8,-5,-1],[-5,8,-1],[-1,-1,5]] / 13
    # B_ij = -P_ij / P_jj, diagonal 0
    expected = np.array([[0, 5 / 8, 1 / 5], [5 / 8, 0, 1 / 5], [1 / 8, 1 / 8, 0]])
    model = EASERecommender(l2=1.0).fit(tiny())
    np.testing.assert_allclose(model.weights, expected, rtol=1e-6)
    # customer c bought z only: scores are row z of B
    np.testing.assert_allclose(model.score(np.array([2]))[0], expected[2], rtol=1e-6)
    # similar to z, from column z of B: x and y tie at 1/5
    rows, scores = model.similar_items(np.array([2]), 2)
    assert rows.tolist() == [[0, 1]]
    np.testing.assert_allclose(scores[0], [1 / 5, 1 / 5], rtol=1e-6)


def test_weighted_fit_uses_the_counts():
    # X with b's two orders of y = [[1,1,0],[1,2,1],[0,0,1]]; X'X + I = [[3,3,1],[3,6,2],[1,2,3]]
    model = EASERecommender(l2=1.0, binary=False).fit(tiny())
    precision = np.linalg.inv(np.array([[3.0, 3, 1], [3, 6, 2], [1, 2, 3]]))
    expected = -precision / np.diag(precision)
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(model.weights, expected, rtol=1e-5, atol=1e-7)


def test_stronger_l2_shrinks_the_weights():
    data = checkerboard()
    weak, strong = EASERecommender(l2=1.0).fit(data), EASERecommender(l2=1000.0).fit(data)
    assert np.abs(strong.weights).sum() < np.abs(weak.weights).sum()


def test_too_large_a_catalogue_is_refused_before_allocating():
    with pytest.raises(ModelFitError, match="max_items"):
        EASERecommender(max_items=5).fit(checkerboard())


def test_non_positive_l2_is_refused():
    with pytest.raises(ValueError, match="l2"):
        EASERecommender(l2=0)


def test_an_item_never_bought_with_another_has_no_similar_items():
    # z is bought with y by b, and alone by c; w only ever alone: its weight column is all zeros
    rows = [("o1", "a", "x"), ("o1", "a", "y"), ("o2", "b", "y"), ("o2", "b", "z"), ("o3", "c", "w")]
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID])
    frame[schema.TIMESTAMP] = pd.Timestamp("2024-01-01")
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    data = build_interactions(frame)
    model = EASERecommender(l2=1.0).fit(data)
    w = data.items.index_of("w")
    similar, _ = model.similar_items(np.array([w]), 3)
    assert similar.tolist() == [[-1, -1, -1]]
    others, _ = model.similar_items(np.array([data.items.index_of("x")]), 3)
    assert w not in others[0].tolist()
    # c bought only w: no evidence for anything, so an empty list the fallback chain fills
    lonely, _ = model.recommend(np.array([data.customers.index_of("c")]), 3, exclude_seen=True)
    assert lonely.tolist() == [[-1, -1, -1]]
    assert np.all(model.score(np.array([data.customers.index_of("c")])) == 0)  # the ranker's feature is kept


def dated(rows):
    """(order, customer, item, days before 2024-03-01) rows, one unit at price 1."""
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, "age"])
    frame[schema.TIMESTAMP] = pd.Timestamp("2024-03-01") - pd.to_timedelta(frame.pop("age"), unit="D")
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame, reference_time=pd.Timestamp("2024-03-01"))


def test_recency_weighs_the_fit_and_the_history_by_age():
    # a bought x and y today, b bought x and z 60 days ago, c bought x today:
    # with a 60-day half-life X = [[1,1,0],[.5,0,.5],[1,0,0]] (columns x, y, z)
    data = dated([("o1", "a", "x", 0), ("o1", "a", "y", 0), ("o2", "b", "x", 60), ("o2", "b", "z", 60),
                  ("o3", "c", "x", 0)])
    x = np.array([[1.0, 1, 0], [0.5, 0, 0.5], [1, 0, 0]])
    precision = np.linalg.inv(x.T @ x + np.eye(3))
    expected = -precision / np.diag(precision)
    np.fill_diagonal(expected, 0)
    model = EASERecommender(l2=1.0, binary=False, recency_half_life_days=60.0).fit(data)
    np.testing.assert_allclose(model.weights, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.score(np.arange(3)), x @ expected, rtol=1e-5, atol=1e-7)
    # c bought x: y, bought with x this season, ranks above z, bought with it two months ago;
    # unweighted, the two co-purchases tie
    c = data.customers.index_of("c")
    y, z = data.items.index_of("y"), data.items.index_of("z")
    recent = model.score(np.array([c]))[0]
    assert recent[y] > recent[z]
    flat = EASERecommender(l2=1.0, binary=False).fit(data).score(np.array([c]))[0]
    assert flat[y] == pytest.approx(flat[z])


def test_binary_recency_weighs_each_pair_by_its_latest_purchase():
    # a bought x 60 and 0 days ago: binary X holds 1 (latest), not 1.5
    data = dated([("o1", "a", "x", 60), ("o2", "a", "x", 0), ("o2", "a", "y", 0), ("o3", "b", "y", 60)])
    model = EASERecommender(l2=1.0, binary=True, recency_half_life_days=60.0).fit(data)
    np.testing.assert_allclose(model.history.toarray(), [[1.0, 1.0], [0.0, 0.5]])


def test_a_recency_weighted_model_scores_the_same_after_loading(tmp_path):
    data = dated([("o1", "a", "x", 0), ("o1", "a", "y", 0), ("o2", "b", "x", 60), ("o2", "b", "z", 60)])
    model = EASERecommender(l2=1.0, binary=False, recency_half_life_days=30.0).fit(data)
    loaded = EASERecommender.load(model.save(tmp_path / "ease"))
    assert loaded.recency_half_life_days == 30.0
    np.testing.assert_array_equal(loaded.score(np.arange(2)), model.score(np.arange(2)))


@pytest.mark.parametrize("half_life", [0.0, -1.0])
def test_non_positive_half_life_is_refused(half_life):
    with pytest.raises(ValueError, match="recency_half_life_days"):
        EASERecommender(recency_half_life_days=half_life)
