from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data import schema
from recsys.data.interactions import build_interactions
from recsys.models.base import top_k
from recsys.models.candidates import candidates_from_scores, make_generators, resolve_generator
from recsys.models.ranker import OBJECTIVES, TwoStageRanker, _below_head, split_for_labels
from recsys.models.ranker_features import FEATURE_NAMES, ITEM_FEATURES, build_features
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
    # the served list names the generator that ranked each staple best (ties go to the first by name)
    _, _, sources = model.recommend_with_sources(np.arange(data.n_customers), 1)
    assert set(sources[:, 0]) <= {"ranker/repeat_buy", "ranker/popularity"} and "ranker/repeat_buy" in sources


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


@pytest.mark.parametrize("weighting", ["orders", "quantity", "binary", "lines"])
def test_the_history_is_weighted_as_the_data_is(weighting):
    frame = habit_shop().transactions.drop(columns=["customer_idx", "item_idx"])
    frame[schema.QUANTITY] = 3.0  # three units a line: quantity weighting triples every count
    data = build_interactions(frame, weighting=weighting, reference_time=REFERENCE)
    history, _ = split_for_labels(data, 30)
    cut = REFERENCE - pd.Timedelta(days=30)
    expected = build_interactions(frame[frame[schema.TIMESTAMP] < cut], weighting=weighting, items=data.items,
                                  reference_time=cut)
    assert history.weighting == weighting
    # same customer rows: every habit_shop customer bought before the cut
    assert (history.matrix != expected.matrix).nnz == 0
    assert history.matrix.max() == {"orders": 17.0, "quantity": 51.0, "binary": 1.0, "lines": 17.0}[weighting]


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
    with pytest.raises(ValueError, match="n_bags"):
        TwoStageRanker(n_bags=0)
    with pytest.raises(ValueError, match="depth_objective"):
        TwoStageRanker(depth_objective="regression")
    with pytest.raises(ValueError, match="depth_after"):
        TwoStageRanker(depth_after=0)


def test_bags_average_boosters_with_consecutive_seeds():
    data = checkerboard()
    model = TwoStageRanker(**SMALL, n_bags=2, random_state=5, depth_objective=None).fit(data)
    bag = model._boosters["all"]
    assert len(bag) == 2
    assert [booster.params["seed"] for booster in bag] == [5, 6]
    rows = np.arange(data.n_customers)
    candidates = model._candidates(model._models, model._features, rows, "all", model._seen)
    mean = sum(booster.predict(candidates.features, raw_score=True) for booster in bag) / 2
    scores = model.score(rows)
    local = np.searchsorted(rows, candidates.customers)
    np.testing.assert_allclose(scores[local, candidates.items], mean, rtol=1e-6)


def test_aliases_name_preset_variants_of_one_model():
    generators = make_generators({"ease_binary": {}, "ease_weighted": {"l2": 50.0}, "repeat_buy": {}})
    assert list(generators) == ["ease_binary", "ease_weighted", "repeat_buy"]
    assert (generators["ease_binary"].binary, generators["ease_binary"].l2) == (True, 500.0)
    # a spec's own parameters override the alias's presets
    assert (generators["ease_weighted"].binary, generators["ease_weighted"].l2) == (False, 50.0)
    assert resolve_generator("item_knn", {"neighbours": 5}) == ("item_knn", {"neighbours": 5})
    with pytest.raises(ValueError, match="no parameter"):
        make_generators({"ease_binary": {"l3": 1.0}})


def test_candidate_ranks_follow_top_k_order_and_skip_seen_items():
    scores = np.array([[3.0, 1.0, 3.0, -np.inf, 2.0],
                       [0.0, 0.0, 5.0, 1.0, -np.inf]], dtype=np.float32)
    popular = np.tile(np.array([[5.0, 4.0, 3.0, 2.0, 1.0]], dtype=np.float32), (2, 1))
    found = candidates_from_scores(np.array([7, 9]), [scores, popular], [2, 0])
    # ties go to the lower item row, as in top_k; the second generator adds no candidate of its own
    assert list(zip(found.customers.tolist(), found.items.tolist(), strict=True)) == [(7, 0), (7, 2), (9, 2), (9, 3)]
    assert found.features[:, 2].tolist() == [1.0, 2.0, 1.0, 2.0]
    assert found.features[:, 3].tolist() == [1.0, 3.0, 3.0, 4.0]
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 1, 0, 0]], dtype=np.float32))
    found = candidates_from_scores(np.array([7, 9]), [scores, popular], [2, 0], seen)
    assert list(zip(found.customers.tolist(), found.items.tolist(), strict=True)) == [(7, 2), (7, 4), (9, 0), (9, 3)]
    # a seen item neither counts in the ranks nor gets one
    assert found.features[:, 2].tolist() == [1.0, 2.0, 2.0, 1.0]
    assert found.features[:, 3].tolist() == [2.0, 4.0, 1.0, 3.0]


def test_candidate_sizes_per_generator():
    scores = np.array([[4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    reverse = scores[:, ::-1].copy()
    found = candidates_from_scores(np.array([0]), [scores, reverse], [1, 2])
    assert found.items.tolist() == [0, 2, 3]


def test_new_item_ranker_objectives():
    data = checkerboard()
    for objective in OBJECTIVES:
        model = TwoStageRanker(**SMALL, new_items_objective=objective).fit(data)
        rows, _ = model.recommend(np.arange(data.n_customers), 2, exclude_seen=True)
        assert (rows % 2 == np.arange(data.n_customers)[:, None] % 2).mean() > 0.9
    with pytest.raises(ValueError, match="new_items_objective"):
        TwoStageRanker(new_items_objective="poisson")


def test_item_velocity_counts_buyers_by_window():
    # item "hot": three buyers in the last week; item "old": the same three buyers 20 days ago
    rows = []
    for c in range(3):
        rows.append((f"h{c}", f"c{c}", "hot", REFERENCE - pd.Timedelta(days=2 + c)))
        rows.append((f"o{c}", f"c{c}", "old", REFERENCE - pd.Timedelta(days=20)))
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP])
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    data = build_interactions(frame, reference_time=REFERENCE)
    table = build_features(data).item
    hot, old = data.items.index_of("hot"), data.items.index_of("old")
    column = {name: i for i, name in enumerate(ITEM_FEATURES)}
    assert table[[hot, old], column["i_buyers_7d"]].tolist() == [3.0, 0.0]
    assert table[[hot, old], column["i_buyers_14d"]].tolist() == [3.0, 0.0]
    assert table[[hot, old], column["i_buyers_30d"]].tolist() == [3.0, 3.0]
    assert table[[hot, old], column["i_orders_30d"]].tolist() == [3.0, 3.0]
    # per 30 days: 3 * 30 / 7 in the last week against 3 in the month, each plus one
    assert table[hot, column["i_slope"]] == pytest.approx((3 * 30 / 7 + 1) / 4)
    assert table[old, column["i_slope"]] == pytest.approx(1 / 4)


def test_item_first_share_counts_first_time_buyers_in_the_last_month():
    # "fresh": two customers buy it for the first time this month; "staple": one regular restocks it
    # this month, one newcomer tries it; "stale": sold only long ago
    rows = [("f0", "c0", "fresh", 5), ("f1", "c1", "fresh", 10),
            ("s0", "c0", "staple", 100), ("s1", "c0", "staple", 3), ("s2", "c2", "staple", 4),
            ("o0", "c1", "stale", 200)]
    frame = pd.DataFrame([(o, c, i, REFERENCE - pd.Timedelta(days=d)) for o, c, i, d in rows],
                         columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP])
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    data = build_interactions(frame, reference_time=REFERENCE)
    table = build_features(data).item
    share = table[:, ITEM_FEATURES.index("i_first_share_30d")]
    assert share[data.items.index_of("fresh")] == 1.0
    assert share[data.items.index_of("staple")] == 0.5
    # nobody bought it this month: no share to speak of, not zero
    assert np.isnan(share[data.items.index_of("stale")])


def test_ranking_objectives_for_all_candidates():
    data = checkerboard()
    for objective in ("rank_xendcg", "lambdarank"):
        model = TwoStageRanker(**SMALL, objective=objective).fit(data)
        rows, _ = model.recommend(np.arange(data.n_customers), 2)
        assert (rows % 2 == np.arange(data.n_customers)[:, None] % 2).mean() > 0.9
    with pytest.raises(ValueError, match="objective"):
        TwoStageRanker(objective="regression")


def test_description_similarity_prefers_items_of_the_customers_kind():
    # c0 bought heart mugs; a new heart mug shares their words, a garden spade none
    names = {"m1": "RED HEART MUG", "m2": "PINK HEART MUG", "m3": "BLUE HEART MUG", "sp": "GARDEN SPADE"}
    rows = [("o0", "c0", "m1", 10), ("o1", "c0", "m2", 5), ("o2", "c1", "m3", 3), ("o3", "c1", "sp", 2)]
    frame = pd.DataFrame([(o, c, i, REFERENCE - pd.Timedelta(days=d), names[i]) for o, c, i, d in rows],
                         columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP,
                                  schema.ITEM_NAME])
    frame[schema.QUANTITY] = 1.0
    frame[schema.UNIT_PRICE] = 1.0
    data = build_interactions(frame, reference_time=REFERENCE)
    features = build_features(data)
    c0 = data.customers.index_of("c0")
    items = np.asarray([data.items.index_of(i) for i in ("m1", "m3", "sp")])
    text = features.gather(np.full(3, c0), items)[:, FEATURE_NAMES.index("p_text_sim")]
    assert text[0] > text[1] > text[2] == 0.0
    # without descriptions the feature is unknown, not zero
    bare = build_features(build_interactions(frame.drop(columns=schema.ITEM_NAME), reference_time=REFERENCE))
    assert np.isnan(bare.gather(np.full(3, c0), items)[:, FEATURE_NAMES.index("p_text_sim")]).all()


def test_depth_ranker_orders_the_list_below_the_head():
    data = checkerboard()
    model = TwoStageRanker(**SMALL, depth_after=2).fit(data)
    assert set(model._boosters) == {"all", "new", "depth"}
    rows = np.arange(data.n_customers)
    candidates = model._candidates(model._models, model._features, rows, "all", model._seen)
    head = model._predict(model._boosters["all"], candidates.features)
    depth = model._predict(model._boosters["depth"], candidates.features)
    listed, _ = model.recommend(rows, 6)
    for row in rows:
        mine = candidates.customers == row
        items, by_head, by_depth = candidates.items[mine], head[mine], depth[mine]
        first = items[np.argsort(-by_head, kind="stable")[:2]]
        rest = [i for i in items[np.argsort(-by_depth, kind="stable")] if i not in first][:4]
        assert listed[row].tolist() == first.tolist() + rest


def test_below_head_keeps_the_head_and_orders_the_rest_by_depth():
    head = np.array([[5.0, 4.0, 3.0, 2.0, -np.inf], [1.0, -np.inf, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    depth = np.array([[0.0, 9.0, 1.0, 3.0, -np.inf], [0.0, 2.0, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    scores = _below_head(head, depth, 2)
    assert np.argsort(-scores[0], kind="stable")[:4].tolist() == [0, 1, 3, 2]
    assert scores[0, :2].tolist() == [5.0, 4.0] and scores[0, 4] == -np.inf
    # the head holds all the row has: the rest stays out
    assert scores[1].tolist() == [1.0, -np.inf, -np.inf, -np.inf, -np.inf]


def test_the_head_keeps_its_ties_by_lower_item_row_like_top_k():
    # LightGBM's raw scores are piecewise constant, so a tie at the head's edge is real: the head is
    # top_k's, whichever tied items a partial sort would have kept
    head = np.array([[0, 0, 0, 0, 0, 0, 2, 0, 2, 2, 0]], dtype=np.float32)
    depth = np.array([[.1, -2.6, .1, .1, .1, -1.9, .1, -4.1, .1, .1, 0]], dtype=np.float32)
    ordered, _ = top_k(_below_head(head, depth, 7), 7)
    assert ordered.tolist() == top_k(head, 7)[0].tolist() == [[6, 8, 9, 0, 1, 2, 3]]
