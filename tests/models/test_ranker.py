from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.ranker import TwoStageRanker, split_for_labels
from tests.models.recommender_contract import RecommenderContract, checkerboard

SMALL = {"candidates_per_generator": 10, "label_days": 60, "n_estimators": 30, "min_child_samples": 5}


class TestTwoStageRankerContract(RecommenderContract):
    def make_model(self):
        return TwoStageRanker(**SMALL)


REFERENCE = pd.Timestamp("2024-06-30")


def habit_shop():
    """Forty customers, each buying their own 'staple' every 10 days up to the end, plus one-off
    'impulse' items 100+ days ago. Whether a customer keeps buying an item in the label window is
    decided by one thing: the item being their staple, which shows as frequent, recent purchases."""
    rows = []
    for c in range(40):
        staple, impulse = f"s{c % 5}", f"x{(c + 1) % 5}"
        for day in range(0, 200, 10):
            rows.append((f"o{c}-{day}", f"c{c:02d}", staple, REFERENCE - pd.Timedelta(days=day + 1)))
        rows.append((f"o{c}-imp", f"c{c:02d}", impulse, REFERENCE - pd.Timedelta(days=150 + c)))
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP])
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame, reference_time=REFERENCE)


def test_learns_to_put_the_staple_first():
    data = habit_shop()
    model = TwoStageRanker(generators={"repeat_buy": {"recency_half_life_days": None},
                                       "popularity": {}}, **{**SMALL, "label_days": 30}).fit(data)
    rows, _ = model.recommend(np.arange(data.n_customers), 1)
    staples = [data.items.index_of(f"s{c % 5}") for c in range(40)]
    assert rows[:, 0].tolist() == staples


def test_labels_come_only_from_after_the_internal_cutoff():
    data = checkerboard()
    model = TwoStageRanker(**SMALL)
    history, labels = split_for_labels(data, SMALL["label_days"])
    cut = data.reference_time - pd.Timedelta(days=SMALL["label_days"])
    assert history.reference_time == cut
    assert (history.transactions[schema.TIMESTAMP] < cut).all()
    after = data.transactions[data.transactions[schema.TIMESTAMP] >= cut]
    bought_after = set(zip(after["customer_idx"], after["item_idx"], strict=True))
    examples = model.training_examples(data)
    positives = examples[examples["label"] == 1]
    assert len(positives) > 0
    assert set(zip(positives["customer_idx"], positives["item_idx"], strict=True)) <= bought_after
    negatives = examples[examples["label"] == 0]
    assert not set(zip(negatives["customer_idx"], negatives["item_idx"], strict=True)) & bought_after
    # generator features were computed before the cut: the repeat-buy score of an item bought only
    # after it is missing
    before = set(zip(history.transactions["customer_idx"], history.transactions["item_idx"], strict=True))
    only_after = [(c, i) not in before for c, i in zip(examples["customer_idx"], examples["item_idx"], strict=True)]
    assert examples.loc[only_after, "repeat_buy_score"].isna().all()


def test_new_item_examples_hold_no_item_bought_before_the_cut():
    data = checkerboard()
    history, _ = split_for_labels(data, SMALL["label_days"])
    examples = TwoStageRanker(**SMALL).training_examples(data, mode="new")
    seen = history.matrix.toarray() > 0
    assert not seen[examples["customer_idx"], examples["item_idx"]].any()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="num_threads"):
        TwoStageRanker(num_threads=0)
    with pytest.raises(ValueError, match="label_days"):
        TwoStageRanker(label_days=0)
