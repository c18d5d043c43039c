from __future__ import annotations

import numpy as np
import pytest

from recsys.models.als import ALSRecommender
from recsys.models.base import top_k
from tests.models.recommender_contract import RecommenderContract, checkerboard


# Two factors: the checkerboard has rank two, and more factors on 60 customers memorise the holes
# in each customer's history as zeros instead of filling them in.
class TestALSContract(RecommenderContract):
    def make_model(self):
        return ALSRecommender(factors=2, iterations=10, regularization=0.05, alpha=10.0, random_state=0)


class TestALSBM25Contract(RecommenderContract):
    def make_model(self):
        return ALSRecommender(factors=2, iterations=10, bm25_weighting=True, random_state=1)


def test_same_seed_same_factors_whatever_the_thread_count():
    data = checkerboard()
    one = ALSRecommender(factors=8, iterations=5, random_state=3, num_threads=1).fit(data)
    two = ALSRecommender(factors=8, iterations=5, random_state=3, num_threads=2).fit(data)
    np.testing.assert_array_equal(one.user_factors, two.user_factors)
    np.testing.assert_array_equal(one.item_factors, two.item_factors)
    other = ALSRecommender(factors=8, iterations=5, random_state=4).fit(data)
    assert not np.array_equal(one.item_factors, other.item_factors)


def test_factors_are_exposed_and_score_is_their_product():
    data = checkerboard()
    model = ALSRecommender(factors=4, iterations=3).fit(data)
    assert model.user_factors.shape == (data.n_customers, 4)
    assert model.item_factors.shape == (data.n_items, 4)
    np.testing.assert_allclose(model.score(np.array([3])), model.user_factors[[3]] @ model.item_factors.T)


def test_similar_items_are_cosine_of_item_factors():
    model = ALSRecommender(factors=4, iterations=3).fit(checkerboard())
    unit = model.item_factors / np.linalg.norm(model.item_factors, axis=1, keepdims=True)
    rows, scores = model.similar_items(np.array([0]), 2)
    np.testing.assert_allclose(scores[0], unit[rows[0]] @ unit[0], rtol=1e-5)


def test_many_customers_are_recommended_in_bounded_batches(monkeypatch):
    model = ALSRecommender(factors=4, iterations=3).fit(checkerboard())
    customers = np.tile(np.arange(model.n_customers), 50)
    calls = []
    from recsys.models import factorization

    real_topk = factorization.topk

    def counting_topk(items, users, *args, **kwargs):
        calls.append(len(users))
        return real_topk(items, users, *args, **kwargs)

    monkeypatch.setattr(factorization, "topk", counting_topk)
    monkeypatch.setattr(ALSRecommender, "score_batch_cells", 100 * model.n_items)
    rows, _ = model.recommend(customers, 5, exclude_seen=True)
    assert max(calls) == 100 and sum(calls) == len(customers)
    np.testing.assert_array_equal(rows[: model.n_customers], rows[model.n_customers: 2 * model.n_customers])


@pytest.mark.parametrize("params", [{"factors": 0}, {"alpha": 0}, {"regularization": -1}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        ALSRecommender(**params)


def _hand_set(model: ALSRecommender, user_factors, item_factors, seen=None) -> ALSRecommender:
    import scipy.sparse as sp

    model.user_factors = np.asarray(user_factors, dtype=np.float32)
    model.item_factors = np.asarray(item_factors, dtype=np.float32)
    shape = (len(model.user_factors), len(model.item_factors))
    model._seen = seen if seen is not None else sp.csr_matrix(shape, dtype=np.float32)
    return model


def test_ties_go_to_lower_item_rows_inside_the_list_and_at_its_cut():
    # items 1 to 4 tie; items without factors (5, 6) tie at 0: the contract wants lower rows first
    model = _hand_set(ALSRecommender(factors=1), [[1.0]], [[3.0], [1.0], [1.0], [1.0], [1.0], [0.0], [0.0]])
    rows, scores = model.recommend(np.array([0]), 3)
    assert rows.tolist() == [[0, 1, 2]] and scores.tolist() == [[3.0, 1.0, 1.0]]
    rows, _ = model.recommend(np.array([0]), 6)
    assert rows.tolist() == [[0, 1, 2, 3, 4, 5]]
    expected, _ = top_k(model.score(np.array([0])), 6)
    assert rows.tolist() == expected.tolist()


def test_items_without_factors_are_nobodys_similar_items():
    model = _hand_set(ALSRecommender(factors=2), [[1.0, 0.0]], [[1.0, 0.0], [-1.0, 0.1], [0.0, 0.0]])
    rows, _ = model.similar_items(np.array([0, 2]), 2)
    # item 1 (cosine about -1) still beats the factorless item 2; item 2 has no similar items
    assert rows.tolist() == [[1, -1], [-1, -1]]
