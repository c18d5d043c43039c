from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.interactions import (
    build_interactions,
    days_before,
    interaction_matrix,
    recency_weighted_matrix,
)

NOW = pd.Timestamp("2024-03-01")


def history(weighting: str = "orders"):
    """Customer a bought x in order o1 (two lines, 3 + 1 units, 60 days ago) and again in o2 (2 units,
    today); customer b bought y once (5 units, 120 days ago)."""
    rows = [("o1", "a", "x", 60, 3.0), ("o1", "a", "x", 60, 1.0), ("o2", "a", "x", 0, 2.0),
            ("o3", "b", "y", 120, 5.0)]
    frame = pd.DataFrame(rows, columns=[schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, "age", schema.QUANTITY])
    frame[schema.TIMESTAMP] = NOW - pd.to_timedelta(frame.pop("age"), unit="D")
    frame[schema.UNIT_PRICE] = 1.0
    return build_interactions(frame, weighting=weighting, reference_time=NOW)


@pytest.mark.parametrize(("weighting", "a_x", "b_y"), [("orders", 2.0, 1.0), ("quantity", 6.0, 5.0),
                                                       ("lines", 3.0, 1.0), ("binary", 1.0, 1.0)])
def test_each_weighting_counts_by_hand(weighting, a_x, b_y):
    assert history(weighting).matrix.toarray().tolist() == [[a_x, 0.0], [0.0, b_y]]


@pytest.mark.parametrize(("weighting", "a_x", "b_y"), [
    ("orders", 0.5 + 1.0, 0.25),            # o1 at half weight, o2 in full
    ("quantity", (3 + 1) * 0.5 + 2, 1.25),  # every unit weighed by its line's age
    ("lines", 0.5 + 0.5 + 1.0, 0.25),
    ("binary", 1.0, 0.25),                  # the latest purchase's weight
])
def test_recency_halves_a_purchase_every_half_life(weighting, a_x, b_y):
    matrix = recency_weighted_matrix(history(weighting), half_life_days=60.0)
    np.testing.assert_allclose(matrix.toarray(), [[a_x, 0.0], [0.0, b_y]], rtol=1e-6)


def test_purchases_after_the_reference_time_count_fully():
    data = history()
    later = build_interactions(data.transactions.drop(columns=["customer_idx", "item_idx"]),
                               reference_time=NOW - pd.Timedelta(days=30))
    # o2 lies 30 days after the reference time: weight 1, not 2
    np.testing.assert_allclose(recency_weighted_matrix(later, 30.0).toarray(), [[0.5 + 1.0, 0.0], [0.0, 0.125]],
                               rtol=1e-6)


def test_row_weights_must_match_the_rows():
    data = history()
    with pytest.raises(ValueError, match="one weight per row"):
        interaction_matrix(data.transactions, "orders", data.matrix.shape, np.ones(2))


@pytest.mark.parametrize("half_life", [0.0, -5.0])
def test_a_half_life_must_be_positive(half_life):
    with pytest.raises(ValueError, match="half_life_days"):
        recency_weighted_matrix(history(), half_life)


def test_days_before_is_fractional():
    stamps = pd.Series([NOW - pd.Timedelta(hours=36), NOW])
    np.testing.assert_allclose(days_before(NOW, stamps), [1.5, 0.0])
