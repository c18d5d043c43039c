from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import IdIndex
from recsys.models.base import NotFittedError
from recsys.models.similarity import TfidfSimilarItems, item_texts

ITEMS = ["mug-red", "mug-blue", "candle-vanilla", "candle-rose", "teapot", "gift-card"]
TEXTS = [
    "RED CERAMIC MUG kitchen",
    "BLUE CERAMIC MUG kitchen",
    "VANILLA SCENTED CANDLE home",
    "ROSE SCENTED CANDLE home",
    "CERAMIC TEAPOT kitchen",
    None,
]


@pytest.fixture(scope="module")
def model():
    return TfidfSimilarItems().fit(ITEMS, TEXTS)


def test_items_sharing_words_are_similar(model):
    rows, scores = model.similar_items(model.rows_of(["mug-red", "candle-rose"]), 3)
    names = [[ITEMS[r] if r >= 0 else None for r in row] for row in rows]
    assert names[0][:2] == ["mug-blue", "teapot"]
    assert names[1] == ["candle-vanilla", None, None], "the candles share no term with mugs or the teapot"
    assert scores[0, 0] > scores[0, 1] > 0
    assert (rows != model.rows_of(["mug-red", "candle-rose"])[:, None]).all()


def test_item_without_text_has_no_similar_items(model):
    rows, scores = model.similar_items(model.rows_of(["gift-card"]), 4)
    assert (rows == -1).all() and np.isneginf(scores).all()


def test_cosines_by_hand():
    model = TfidfSimilarItems(ngram_range=(1, 1)).fit(["a", "b"], ["mug red", "mug blue"])
    # smooth idf: "mug" in both documents -> 1, "red" and "blue" in one -> 1 + ln(3/2); tf 1 -> 1
    idf = 1 + np.log(3 / 2)
    expected = 1 / (1 + idf**2)
    _, scores = model.similar_items(np.array([0]), 1)
    assert scores[0, 0] == pytest.approx(expected, rel=1e-6)


def test_rows_of_unknown_ids_and_bad_rows(model):
    assert model.rows_of(["teapot", "unknown"]).tolist() == [4, -1]
    with pytest.raises(IndexError):
        model.similar_items(np.array([len(ITEMS)]), 2)
    with pytest.raises(NotFittedError):
        TfidfSimilarItems().similar_items(np.array([0]), 2)


def test_save_and_load_round_trip(model, tmp_path):
    loaded = TfidfSimilarItems.load(model.save(tmp_path / "tfidf"))
    assert loaded.get_params() == model.get_params()
    rows = np.arange(len(ITEMS))
    for got, expected in zip(loaded.similar_items(rows, 3), model.similar_items(rows, 3), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_refuses_mismatched_inputs_and_empty_texts():
    with pytest.raises(ValueError, match="2 item ids but 1 texts"):
        TfidfSimilarItems().fit(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="no usable terms"):
        TfidfSimilarItems().fit(["a", "b"], [None, ""])
    with pytest.raises(ValueError, match="analyzer"):
        TfidfSimilarItems(analyzer="chars")


def test_item_texts_takes_the_most_common_name_and_category():
    frame = pd.DataFrame({
        schema.ITEM_ID: ["1", "1", "1", "2", "2"],
        schema.ITEM_NAME: ["RED MUG", "RED MUG", "red mug ", "TEAPOT", None],
        schema.CATEGORY: ["kitchen", None, "kitchen", None, None],
    })
    texts = item_texts(frame, IdIndex.from_values(["1", "2", "3"]))
    assert texts == ["RED MUG kitchen", "TEAPOT", ""]


def test_load_finds_the_file_save_wrote_without_its_suffix(model, tmp_path):
    model.save(tmp_path / "tfidf")  # written as tfidf.npz
    assert TfidfSimilarItems.load(tmp_path / "tfidf").get_params() == model.get_params()
