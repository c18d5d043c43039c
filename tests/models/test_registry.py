from __future__ import annotations

import numpy as np
import pytest

from recsys.models.als import ALSRecommender
from recsys.models.item_knn import ItemKNNRecommender
from recsys.models.popularity import PopularityRecommender
from recsys.models.registry import MODEL_CLASSES, create_model, load_model, model_params
from tests.models.recommender_contract import checkerboard


def test_names_match_the_classes():
    assert set(MODEL_CLASSES) >= {"popularity", "repeat_buy", "item_knn", "user_knn", "als", "bpr", "ease", "ranker"}
    for name, cls in MODEL_CLASSES.items():
        assert cls.name == name


def test_create_model_passes_parameters():
    model = create_model("als", factors=16, alpha=4.0)
    assert isinstance(model, ALSRecommender)
    assert model.get_params()["factors"] == 16 and model.get_params()["alpha"] == 4.0
    assert model_params("popularity") == {"window_days": None, "by": "customers"}


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown model 'al'.*did you mean 'als'.*item_knn"):
        create_model("al")


def test_misspelled_parameter_is_an_error_not_ignored():
    with pytest.raises(ValueError, match=r"'factor'.*did you mean 'factors'.*valid parameters: factors"):
        create_model("als", factor=8)


def test_invalid_parameter_value_is_an_error():
    with pytest.raises(ValueError, match="similarity"):
        create_model("item_knn", similarity="pearson")


def test_load_model_without_the_suffix_and_refuses_other_files(tmp_path):
    data = checkerboard()
    PopularityRecommender(window_days=30).fit(data).save(tmp_path / "trending")
    model = load_model(tmp_path / "trending")
    assert isinstance(model, PopularityRecommender) and model.window_days == 30
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a saved recommender"):
        load_model(tmp_path / "other.npz")


def test_a_class_refuses_to_load_another_model(tmp_path):
    path = PopularityRecommender().fit(checkerboard()).save(tmp_path / "popular.npz")
    with pytest.raises(ValueError, match="popularity"):
        ItemKNNRecommender.load(path)


def test_unfitted_model_cannot_be_saved(tmp_path):
    from recsys.models.base import NotFittedError

    with pytest.raises(NotFittedError):
        ALSRecommender().save(tmp_path / "als.npz")
