from __future__ import annotations

import numpy as np
import pytest

from recsys.models.bpr import BPRRecommender
from tests.models.recommender_contract import RecommenderContract, checkerboard


class TestBPRContract(RecommenderContract):
    def make_model(self):
        # regularised well above the default: 60 customers otherwise let SGD memorise their holes
        return BPRRecommender(factors=4, learning_rate=0.05, regularization=0.1, iterations=200, random_state=0)


def test_item_bias_column_is_part_of_the_factors():
    data = checkerboard()
    model = BPRRecommender(factors=4, iterations=5).fit(data)
    assert model.user_factors.shape[0] == data.n_customers
    assert model.item_factors.shape == (data.n_items, model.user_factors.shape[1])
    np.testing.assert_array_equal(model.user_factors[:, -1], 1.0)


def test_seed_changes_the_factors():
    data = checkerboard()
    one = BPRRecommender(factors=4, iterations=5, random_state=1).fit(data)
    two = BPRRecommender(factors=4, iterations=5, random_state=2).fit(data)
    assert not np.array_equal(one.item_factors, two.item_factors)


@pytest.mark.parametrize("params", [{"factors": 0}, {"learning_rate": 0}, {"regularization": -0.1}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValueError):
        BPRRecommender(**params)
