from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.registry import create_model, load_model
from recsys.models.user_knn import UserKNNRecommender
from tests.models.recommender_contract import RecommenderContract


class TestUserKNNCosineContract(RecommenderContract):
    def make_model(self):
        return UserKNNRecommender(similarity="cosine", neighbours=10, num_threads=1)


class TestUserKNNBM25Contract(RecommenderContract):
    def make_model(self):
        # BM25 ranks first the customers who skipped the same items, and the ten closest to one
        # checkerboard customer all skipped one of its three missing items: no evidence for it
        return UserKNNRecommender(similarity="bm25", neighbours=20, num_threads=1)


def shop():
    """Customers a, b, c, d over items w, x, y, z; b buys x in two orders, so the weighted matrix has a 2.

    a: w x      b: w x x y      c: y z      d: w
    """
    rows = [("o1", "a", "w"), ("o1", "a", "x"), ("o2", "b", "w"), ("o2", "b", "x"), ("o3", "b", "x"),
            ("o3", "b", "y"), ("o4", "c", "y"), ("o4", "c", "z"), ("o5", "d", "w")]
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID])
    frame[schema.TIMESTAMP] = pd.Timestamp("2024-01-01")
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame, weighting="orders")


def test_cosine_similarities_and_scores_by_hand():
    data = shop()
    assert data.matrix.toarray().tolist() == [[1, 1, 0, 0], [1, 2, 1, 0], [0, 0, 1, 1], [1, 0, 0, 0]]
    # |a| = sqrt 2, |b| = sqrt 6, |c| = sqrt 2, |d| = 1
    # cos(a, b) = 3 / sqrt 12 = 0.8660, cos(a, d) = 1 / sqrt 2 = 0.7071, cos(b, c) = 1 / sqrt 12 = 0.2887,
    # cos(b, d) = 1 / sqrt 6 = 0.4082, cos(a, c) = cos(c, d) = 0
    model = UserKNNRecommender(neighbours=5, num_threads=1).fit(data)
    s_ab, s_ad, s_bc, s_bd = 3 / np.sqrt(12), 1 / np.sqrt(2), 1 / np.sqrt(12), 1 / np.sqrt(6)
    np.testing.assert_allclose(model.customer_similarity.toarray(),
                               [[0, s_ab, 0, s_ad], [s_ab, 0, s_bc, s_bd], [0, s_bc, 0, 0], [s_ad, s_bd, 0, 0]],
                               rtol=1e-6)
    # votes count whether a neighbour bought the item, not how often: b's two orders of x count once
    # a: w from b and d, x from b, y from b, z from nobody
    # b: w from a and d, x from a, y and z from c
    # c: w, x and y from b (its one neighbour); z bought by no neighbour of c
    expected = [[s_ab + s_ad, s_ab, s_ab, -np.inf], [s_ab + s_bd, s_ab, s_bc, s_bc], [s_bc, s_bc, s_bc, -np.inf]]
    np.testing.assert_allclose(model.score(np.array([0, 1, 2])), expected, rtol=1e-6)
    rows, _ = model.recommend(np.array([3]), 3, exclude_seen=True)
    # d's neighbours a and b bought x (0.7071 + 0.4082) and y (0.4082 from b only)
    assert rows.tolist() == [[1, 2, -1]]


def test_neighbours_keeps_only_the_closest():
    model = UserKNNRecommender(neighbours=1, num_threads=1).fit(shop())
    similarity = model.customer_similarity.toarray()
    assert (np.count_nonzero(similarity, axis=1) == 1).all()
    # each customer's one neighbour: a -> b, b -> a, c -> b (its only one), d -> a
    assert similarity.argmax(axis=1).tolist() == [1, 0, 1, 0]
    # a's only neighbour is b, so z (which b never bought) has no evidence for a
    assert model.score(np.array([0]))[0, 3] == -np.inf


def test_bm25_weights_customers_as_documents():
    data = shop()
    weighted = bm25_weight(data.matrix.astype(np.float64), K1=1.2, B=0.75).toarray()
    expected = weighted @ weighted.T
    np.fill_diagonal(expected, 0)
    model = UserKNNRecommender(similarity="bm25", neighbours=5, num_threads=1).fit(data)
    np.testing.assert_allclose(model.customer_similarity.toarray(), np.where(expected > 0, expected, 0), rtol=1e-5)


def test_a_customer_with_no_neighbour_scores_nothing():
    data = shop()
    frame = data.transactions.copy()
    lonely = frame.iloc[[0]].assign(**{schema.CUSTOMER_ID: "e", schema.ITEM_ID: "v", schema.ORDER_ID: "o6"})
    data = build_interactions(pd.concat([frame[[c for c in lonely.columns]], lonely], ignore_index=True))
    model = UserKNNRecommender(num_threads=1).fit(data)
    row = data.customers.index_of("e")
    assert np.isneginf(model.score(np.array([row]))).all()


def test_save_and_load_score_the_same(tmp_path):
    model = create_model("user_knn", neighbours=2, num_threads=1).fit(shop())
    loaded = load_model(model.save(tmp_path / "user_knn"))
    assert isinstance(loaded, UserKNNRecommender) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score(np.arange(4)), model.score(np.arange(4)))
    assert sp.issparse(loaded.customer_similarity)


@pytest.mark.parametrize("params, message", [({"similarity": "jaccard"}, "cosine"), ({"neighbours": 0}, ">= 1")])
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        UserKNNRecommender(**params)
