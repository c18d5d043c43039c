"""RFM scores and segments: the whole 5x5x5 grid, and hand-checked customers with many ties."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from recsys.customers.rfm import SEGMENTS, fm_score, quintile_scores, rfm_scores, segment_of, segment_summary


def test_every_rfm_triple_maps_to_exactly_one_known_segment():
    seen = {}
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        seen[(r, f, m)] = segment_of(r, f, m)
    assert len(seen) == 125
    assert set(seen.values()) == set(SEGMENTS)
    # Corners and edges read off the grid by hand.
    assert seen[(5, 5, 5)] == "Champions"
    assert seen[(5, 1, 1)] == "New Customers"
    assert seen[(4, 1, 1)] == "Promising"
    assert seen[(1, 1, 1)] == "Lost"
    assert seen[(1, 1, 2)] == "Hibernating"  # FM = ceil(3/2) = 2
    assert seen[(1, 5, 5)] == "Can't Lose Them"
    assert seen[(2, 4, 5)] == "Can't Lose Them"  # FM = ceil(9/2) = 5
    assert seen[(2, 3, 4)] == "At Risk"
    assert seen[(3, 3, 3)] == "Need Attention"
    assert seen[(3, 2, 1)] == "About to Sleep"
    assert seen[(3, 4, 4)] == "Loyal Customers"
    assert seen[(5, 2, 3)] == "Potential Loyalists"


def test_fm_score_rounds_half_up():
    assert fm_score(1, 2) == 2
    assert fm_score(4, 5) == 5
    assert fm_score(3, 3) == 3


@pytest.mark.parametrize("bad", [(0, 1, 1), (1, 6, 1), (1, 1, 2.5)])
def test_segment_of_rejects_scores_outside_one_to_five(bad):
    with pytest.raises(ValueError, match="score"):
        segment_of(*bad)


def test_quintiles_are_equal_sized_even_with_ties():
    scores = quintile_scores([np.zeros(12), np.arange(12)])
    assert np.bincount(scores)[1:].tolist() == [3, 2, 3, 2, 2]
    assert (np.diff(scores) >= 0).all()


# Ten customers; half bought once. Orders (worst first) worked out by hand from the tie rules.
HAND = pd.DataFrame(
    {
        "recency_days": [5, 5, 40, 40, 100, 100, 200, 300, 300, 10],
        "frequency": [1, 8, 1, 3, 1, 1, 6, 1, 2, 1],
        "monetary_total": [50.0, 900.0, 20.0, 300.0, 80.0, 10.0, 700.0, 15.0, 60.0, 200.0],
    },
    index=pd.Index(list("abcdefghij"), name="customer_id"),
)


def test_hand_checked_scores_and_segments():
    out = rfm_scores(HAND)
    # Recency, worst first: h(300,f1) i(300,f2) g(200) f(100,m10) e(100,m80) c(40,f1) d(40,f3) j(10)
    # a(5,f1) b(5,f8); two per quintile.
    assert out["recency_score"].to_dict() == dict(zip("higfecdjab", [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], strict=True))
    # Frequency, worst first: the one-order customers by spend f(10) h(15) c(20) a(50) e(80) j(200),
    # then i(2) d(3) g(6) b(8).
    assert out["frequency_score"].to_dict() == dict(zip("fhcaejidgb", [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], strict=True))
    # Monetary, worst first: f h c a i e j d g b.
    assert out["monetary_score"].to_dict() == dict(zip("fhcaiejdgb", [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], strict=True))
    assert out.loc["b", "segment"] == "Champions"  # 5,5,5
    assert out.loc["a", "segment"] == "Potential Loyalists"  # 5,2,2
    assert out.loc["h", "segment"] == "Lost"  # 1,1,1
    assert out.loc["g", "segment"] == "Can't Lose Them"  # 2,5,5
    assert out.loc["j", "segment"] == "Loyal Customers"  # 4,3,4: FM = ceil(7/2) = 4
    assert out.loc["j", "rfm_cell"] == "434"


def test_monetary_is_ranked_net_of_returns():
    # b spent 900 and sent all of it back, d returned 290 of its 300, h returned 40 for 15 spent (floored at 0)
    returned = HAND.assign(return_value=[0.0, 900.0, 0, 290.0, 0, 0, 0, 40.0, 0, 0])
    out = rfm_scores(returned)
    # net, worst first (ties by frequency): h 0 (1 order), b 0 (8), f 10 (1), d 10 (3), c 20, a 50, i 60, e 80,
    # j 200, g 700
    assert out["monetary_score"].to_dict() == dict(zip("hbfdcaiejg", [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], strict=True))
    assert out.loc["b", "segment"] != "Champions"
    pd.testing.assert_frame_equal(rfm_scores(HAND.assign(return_value=0.0)), rfm_scores(HAND))


def test_scores_do_not_depend_on_row_order():
    shuffled = HAND.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(rfm_scores(shuffled).loc[HAND.index], rfm_scores(HAND))


def test_segment_summary_covers_every_segment_and_sums_up():
    scores = rfm_scores(HAND)
    summary = segment_summary(scores, HAND["monetary_total"])
    assert [s["name"] for s in summary] == list(SEGMENTS)
    assert sum(s["size"] for s in summary) == len(HAND)
    assert sum(s["revenue_share"] for s in summary) == pytest.approx(1.0)
    champions = next(s for s in summary if s["name"] == "Champions")
    assert champions["size"] == 1 and champions["revenue"] == 900.0
