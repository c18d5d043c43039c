from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.item_knn import ItemKNNRecommender
from tests.models.recommender_contract import RecommenderContract


class TestItemKNNCosineContract(RecommenderContract):
    def make_model(self):
        return ItemKNNRecommender(similarity="cosine", neighbours=10, num_threads=1)


class TestItemKNNBM25Contract(RecommenderContract):
    def make_model(self):
        return ItemKNNRecommender(similarity="bm25", neighbours=10, num_threads=1)


def tiny():
    """Customers a, b, c over items x, y, z (binary): a: x y, b: x y z, c: z."""
    rows = [("o1", "a", "x"), ("o1", "a", "y"), ("o2", "b", "x"), ("o2", "b", "y"), ("o2", "b", "z"),
            ("o3", "c", "z")]
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID])
    frame[schema.TIMESTAMP] = pd.Timestamp("2024-01-01")
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame)


def test_cosine_similarities_and_scores_by_hand():
    # item vectors over (a, b, c): x = y = (1, 1, 0), z = (0, 1, 1)
    # cos(x, y) = 1, cos(x, z) = cos(y, z) = 1 / 2
    model = ItemKNNRecommender(neighbours=5, num_threads=1).fit(tiny())
    np.testing.assert_allclose(model.item_similarity.toarray(),
                               [[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]], rtol=1e-6)
    # a bought x and y: x and y score 1 each (via the other), z 1/2 + 1/2; c bought only z: x and y
    # score 1/2, and z itself has no similarity path (an item is not its own neighbour): -inf
    np.testing.assert_allclose(model.score(np.array([0, 2])), [[1, 1, 1], [0.5, 0.5, -np.inf]], rtol=1e-6)
    rows, scores = model.similar_items(np.array([2]), 3)
    assert rows.tolist() == [[0, 1, -1]] and scores[0, :2].tolist() == [0.5, 0.5]


def test_neighbours_keeps_only_the_closest():
    model = ItemKNNRecommender(neighbours=1, num_threads=1).fit(tiny())
    similarity = model.item_similarity.toarray()
    assert (np.count_nonzero(similarity, axis=1) == 1).all()
    assert similarity[0, 1] == pytest.approx(1.0) and similarity[1, 0] == pytest.approx(1.0)
    # z keeps one of its two equally close neighbours; customer c (who bought only z) has no path
    # to the other, which scores -inf
    scores = model.score(np.array([2]))[0]
    assert sorted(scores[:2].tolist()) == [-np.inf, pytest.approx(0.5)]


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # implicit's own fit converts internally
def test_bm25_matches_implicit_bm25_recommender():
    from implicit.nearest_neighbours import BM25Recommender

    data = tiny()
    reference = BM25Recommender(K=10, K1=1.2, B=0.75, num_threads=1)
    reference.fit(data.matrix, show_progress=False)
    expected = reference.similarity.toarray()
    np.fill_diagonal(expected, 0)
    model = ItemKNNRecommender(similarity="bm25", neighbours=10, num_threads=1).fit(data)
    np.testing.assert_allclose(model.item_similarity.toarray(), expected, rtol=1e-5)


def test_unknown_similarity_is_refused():
    with pytest.raises(ValueError, match="cosine"):
        ItemKNNRecommender(similarity="jaccard")
