"""The contract every recommender meets, written once and inherited by each model's tests.

The data set is a checkerboard whose right answer is obvious: customers and items each fall into
an even and an odd group, and customers buy only items of their own group, each missing a few. So a
model that learned anything recommends, among unseen items, those of the customer's own group, and
calls items of the same group similar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import Interactions, build_interactions
from recsys.models.base import NotFittedError, Recommender, top_k
from recsys.models.registry import create_model, load_model

N_CUSTOMERS = 60
N_ITEMS = 20
MISSING_PER_CUSTOMER = 3
REFERENCE_TIME = pd.Timestamp("2024-06-30")


def checkerboard_transactions(seed: int = 7) -> pd.DataFrame:
    """Customer c (group c % 2) buys every item of group c % 2 except three, in one to three orders."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(N_CUSTOMERS):
        own = np.arange(customer % 2, N_ITEMS, 2)
        skipped = rng.choice(own, MISSING_PER_CUSTOMER, replace=False)
        for item in own[~np.isin(own, skipped)]:
            for _ in range(rng.integers(1, 4)):
                order = f"o{customer}-{rng.integers(0, 5)}"
                day = rng.integers(0, 120)
                rows.append((order, f"c{customer:03d}", f"i{item:03d}", REFERENCE_TIME - pd.Timedelta(days=day)))
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP])
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 2.5
    return frame


def checkerboard() -> Interactions:
    return build_interactions(checkerboard_transactions(), reference_time=REFERENCE_TIME)


def group(rows: np.ndarray) -> np.ndarray:
    """Group of customer or item rows; ids are zero-padded, so row order is number order."""
    return np.asarray(rows) % 2


class RecommenderContract:
    """Mix into a test class that defines :meth:`make_model` (a new, unfitted model)."""

    def make_model(self) -> Recommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def data(self) -> Interactions:
        return checkerboard()

    @pytest.fixture(scope="class")
    def model(self, data) -> Recommender:
        return self.make_model().fit(data)

    @pytest.fixture
    def customers(self, data) -> np.ndarray:
        return np.arange(data.n_customers)

    # -- shapes and padding ------------------------------------------------------------------------
    def test_fit_returns_self(self, data):
        model = self.make_model()
        assert model.fit(data) is model

    @pytest.mark.parametrize("k", [1, 5, N_ITEMS, N_ITEMS + 7])
    @pytest.mark.parametrize("exclude_seen", [False, True])
    def test_recommend_shapes_padding_and_order(self, model, customers, k, exclude_seen):
        rows, scores = model.recommend(customers, k, exclude_seen=exclude_seen)
        assert rows.shape == scores.shape == (len(customers), k)
        assert rows.dtype == np.int64 and scores.dtype == np.float32
        assert ((rows >= -1) & (rows < N_ITEMS)).all()
        np.testing.assert_array_equal(rows == -1, np.isneginf(scores))
        assert not np.isnan(scores).any()
        assert (np.diff(np.where(np.isneginf(scores), -np.finfo(np.float32).max, scores), axis=1) <= 0).all()
        for row in rows:
            real = row[row >= 0]
            assert len(set(real)) == len(real)
            assert (row[len(real):] == -1).all(), "padding only at the end"
        if k > N_ITEMS:
            assert (rows[:, N_ITEMS:] == -1).all()

    def test_exclude_seen_never_returns_a_seen_item(self, model, data, customers):
        rows, _ = model.recommend(customers, N_ITEMS, exclude_seen=True)
        bought = data.matrix.toarray() > 0
        for customer, row in zip(customers, rows, strict=True):
            real = row[row >= 0]
            assert not bought[customer, real].any()

    def test_new_items_follow_the_full_list_unless_ranked_apart(self, model, data, customers):
        # a snapshot stores one list for such a model and serves "exclude already bought" from it
        # without the bought items: that must be the list exclude_seen gives
        if model.ranks_new_items_apart:
            pytest.skip(f"{model.name} ranks new items with a model of their own")
        new, _ = model.recommend(customers, 6, exclude_seen=True)
        full, _ = model.recommend(customers, N_ITEMS)
        bought = data.matrix.toarray() > 0
        for customer, row, whole in zip(customers, new, full, strict=True):
            unseen = [item for item in whole[whole >= 0].tolist() if not bought[customer, item]]
            assert row[row >= 0].tolist() == unseen[:6]

    def test_recommends_unseen_items_of_own_group(self, model, customers):
        rows, _ = model.recommend(customers, MISSING_PER_CUSTOMER, exclude_seen=True)
        assert (rows >= 0).all()
        np.testing.assert_array_equal(group(rows), group(customers)[:, None] * np.ones_like(rows))

    def test_recommend_agrees_with_score(self, model, customers):
        k = 6
        rows, scores = model.recommend(customers, k)
        dense = model.score(customers)
        assert dense.shape == (len(customers), N_ITEMS)
        expected_rows, expected_scores = top_k(dense.astype(np.float32), k)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
        real = rows >= 0
        np.testing.assert_allclose(np.take_along_axis(dense, np.maximum(rows, 0), axis=1)[real],
                                   scores[real], rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("exclude_seen", [False, True])
    def test_sources_name_every_recommended_item(self, model, customers, exclude_seen):
        rows, scores = model.recommend(customers, 8, exclude_seen=exclude_seen)
        with_rows, with_scores, sources = model.recommend_with_sources(customers, 8, exclude_seen=exclude_seen)
        np.testing.assert_array_equal(with_rows, rows)
        np.testing.assert_allclose(with_scores, scores, rtol=1e-5, atol=1e-6)
        names = [sources] if isinstance(sources, str) else sources[rows >= 0].tolist()
        assert isinstance(sources, str) or sources.shape == rows.shape
        assert all(isinstance(name, str) and name.startswith(model.name) for name in names)

    def test_any_subset_and_order_of_customers(self, model, customers):
        picked = customers[[5, 0, 5, 17]]
        rows, scores = model.recommend(picked, 4)
        all_rows, all_scores = model.recommend(customers, 4)
        np.testing.assert_array_equal(rows, all_rows[picked])
        np.testing.assert_array_equal(scores, all_scores[picked])

    def test_batches_give_the_same_answer(self, model, customers, monkeypatch):
        expected = model.recommend(customers, 5, exclude_seen=True)
        monkeypatch.setattr(type(model), "score_batch_cells", 3 * N_ITEMS)
        batched = model.recommend(customers, 5, exclude_seen=True)
        np.testing.assert_array_equal(batched[0], expected[0])
        np.testing.assert_array_equal(batched[1], expected[1])

    def test_no_customers_gives_empty_arrays(self, model):
        rows, scores = model.recommend(np.array([], dtype=np.int64), 5)
        assert rows.shape == scores.shape == (0, 5)

    # -- refusals ------------------------------------------------------------------------------------
    def test_unfitted_model_refuses(self):
        with pytest.raises(NotFittedError):
            self.make_model().recommend(np.arange(3), 5)

    def test_bad_arguments_are_refused(self, model, data):
        with pytest.raises(IndexError, match="outside"):
            model.recommend(np.array([data.n_customers]), 5)
        with pytest.raises(IndexError):
            model.recommend(np.array([-1]), 5)
        with pytest.raises(ValueError, match="integer"):
            model.recommend(np.array([0.5]), 5)
        with pytest.raises(ValueError, match="k must be"):
            model.recommend(np.arange(3), 0)

    # -- similar items ----------------------------------------------------------------------------------
    def test_similar_items_are_of_the_same_group(self, model):
        items = np.arange(N_ITEMS)
        if not model.supports_similar_items:
            with pytest.raises(NotImplementedError):
                model.similar_items(items, 3)
            return
        rows, scores = model.similar_items(items, 3)
        assert rows.shape == scores.shape == (N_ITEMS, 3)
        assert (rows >= 0).all()
        assert (rows != items[:, None]).all(), "an item is not its own similar item"
        np.testing.assert_array_equal(group(rows), group(items)[:, None] * np.ones_like(rows))

    def test_similar_items_padding_and_range(self, model):
        if not model.supports_similar_items:
            pytest.skip(f"{model.name} provides no similar items")
        items = np.arange(N_ITEMS)
        rows, scores = model.similar_items(items, N_ITEMS + 5)
        assert rows.shape == (N_ITEMS, N_ITEMS + 5)
        assert ((rows >= -1) & (rows < N_ITEMS)).all()
        np.testing.assert_array_equal(rows == -1, np.isneginf(scores))
        assert (rows[:, N_ITEMS - 1:] == -1).all(), "at most n_items - 1 other items"
        with pytest.raises(IndexError):
            model.similar_items(np.array([N_ITEMS]), 3)

    # -- determinism and persistence --------------------------------------------------------------------
    def test_fitting_twice_gives_identical_scores(self, model, data, customers):
        again = self.make_model().fit(data)
        np.testing.assert_array_equal(again.score(customers), model.score(customers))

    def test_save_and_load_round_trip(self, model, customers, tmp_path):
        path = model.save(tmp_path / "model")
        assert path.suffix == ".npz" and path.exists()
        with np.load(path, allow_pickle=False) as archive:
            assert all(archive[key].dtype != object for key in archive.files)
        loaded = load_model(path)
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.score(customers), model.score(customers))
        for exclude_seen in (False, True):
            for got, expected in zip(loaded.recommend(customers, 7, exclude_seen=exclude_seen),
                                     model.recommend(customers, 7, exclude_seen=exclude_seen), strict=True):
                np.testing.assert_array_equal(got, expected)
        if model.supports_similar_items:
            items = np.arange(N_ITEMS)
            np.testing.assert_array_equal(loaded.similar_items(items, 4)[0], model.similar_items(items, 4)[0])

    def test_registry_rebuilds_the_model_from_its_params(self, model):
        rebuilt = create_model(model.name, **model.get_params())
        assert type(rebuilt) is type(model)
        assert rebuilt.get_params() == model.get_params()
