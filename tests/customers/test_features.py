"""Customer features: hand-computed values, and nothing at or after the cutoff can change them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.customers.features import customer_features
from recsys.data import clean_transactions, generate_transactions, schema


def _lines(rows):
    order, customer, item, time, quantity, price, category, country = zip(*rows, strict=True)
    return pd.DataFrame({
        schema.ORDER_ID: pd.Series(order, dtype="string"),
        schema.CUSTOMER_ID: pd.Series(customer, dtype="string"),
        schema.ITEM_ID: pd.Series(item, dtype="string"),
        schema.TIMESTAMP: pd.to_datetime(list(time)),
        schema.QUANTITY: np.asarray(quantity, dtype=float),
        schema.UNIT_PRICE: np.asarray(price, dtype=float),
        schema.CATEGORY: pd.Series(category, dtype="string"),
        schema.COUNTRY: pd.Series(country, dtype="string"),
    })


TOY = _lines([
    ("1", "a", "x", "2024-01-01 10:00", 2, 5.0, "Kitchen", "UK"),
    ("1", "a", "y", "2024-01-01 10:00", 1, 10.0, "Garden", "UK"),
    ("2", "a", "x", "2024-01-11 10:00", 1, 5.0, "Kitchen", "UK"),
    ("3", "a", "x", "2024-01-31 10:00", 4, 5.0, "Kitchen", "UK"),
    ("4", "b", "z", "2024-01-30 00:00", 1, 100.0, "Toys", "France"),
    ("5", "a", "y", "2024-02-01 00:00", 9, 99.0, "Garden", "UK"),  # at the cutoff: not seen
])
RETURNS = _lines([
    ("C1", "a", "x", "2024-01-12 10:00", 1, 5.0, "Kitchen", "UK"),
    ("C2", "a", "x", "2024-02-05 10:00", 1, 5.0, "Kitchen", "UK"),  # after the cutoff
])


def test_hand_computed_features():
    out = customer_features(TOY, "2024-02-01", RETURNS, windows=(10, 30))
    a, b = out.loc["a"], out.loc["b"]
    assert list(out.index) == ["a", "b"]
    assert a["recency_days"] == pytest.approx(14 / 24)
    assert a["frequency"] == 3 and a["purchase_days"] == 3
    assert a["monetary_total"] == 45.0 and a["monetary_mean"] == 15.0 and a["monetary_max"] == 20.0
    assert a["tenure_days"] == pytest.approx(30 + 14 / 24)
    assert a["ipt_mean"] == 15.0 and a["ipt_std"] == pytest.approx(np.std([10, 20], ddof=1))
    assert a["ipt_cv"] == pytest.approx(a["ipt_std"] / 15.0)
    assert a["recency_gap_ratio"] == pytest.approx(14 / 24 / 15)
    assert a["basket_lines"] == pytest.approx(4 / 3) and a["basket_units"] == pytest.approx(8 / 3)
    assert a["return_count"] == 1 and a["return_value"] == 5.0 and a["return_rate"] == pytest.approx(5 / 45)
    # Last 10 days: order 3; the 10 before: none. Last 30 days: orders 2 and 3; the 30 before: order 1.
    assert a["orders_10d"] == 1 and a["orders_10d_trend"] == 1.0
    assert a["orders_30d"] == 2 and a["orders_30d_trend"] == pytest.approx(2 / 3)
    assert a["spend_30d"] == 25.0 and a["spend_30d_trend"] == pytest.approx(25 / 45)
    assert a["n_items"] == 2 and a["top_item_share"] == 0.75
    assert a["n_categories"] == 2 and a["top_category_share"] == 0.75
    assert a["country"] == "UK" and b["country"] == "France"
    assert np.isnan(b["ipt_mean"]) and np.isnan(b["recency_gap_ratio"]) and b["return_count"] == 0


def test_nothing_at_or_after_the_cutoff_changes_the_features():
    raw = generate_transactions(n_customers=400, n_items=80, start="2023-01-01", end="2023-12-31", seed=5)
    cleaned = clean_transactions(raw)
    cutoff = pd.Timestamp("2023-08-01")
    before = customer_features(cleaned.transactions, cutoff, cleaned.returns)

    later = cleaned.transactions[schema.TIMESTAMP] >= cutoff
    scrambled = cleaned.transactions.copy()
    rng = np.random.default_rng(0)
    scrambled.loc[later, schema.QUANTITY] = rng.integers(1, 50, later.sum()).astype(float)
    scrambled.loc[later, schema.CUSTOMER_ID] = "someone-new"
    scrambled.loc[later, schema.ITEM_ID] = "another-item"
    returns = cleaned.returns.copy()
    returns.loc[returns[schema.TIMESTAMP] >= cutoff, schema.UNIT_PRICE] = 1e6
    after = customer_features(scrambled, cutoff, returns)
    pd.testing.assert_frame_equal(before, after)
    assert "someone-new" not in after.index
    dropped = customer_features(cleaned.transactions.loc[~later], cutoff, cleaned.returns)
    pd.testing.assert_frame_equal(before, dropped)


def test_no_categories_gives_nan_mix_not_zero():
    out = customer_features(TOY.drop(columns=[schema.CATEGORY]), "2024-02-01")
    assert out["n_categories"].isna().all() and out["return_count"].eq(0).all()


def test_rejects_missing_columns():
    with pytest.raises(ValueError, match="lack columns"):
        customer_features(TOY.drop(columns=[schema.ORDER_ID]), "2024-02-01")


@pytest.mark.parametrize("drop", [[], [schema.COUNTRY]])
def test_no_purchase_before_the_cutoff_gives_an_empty_frame(drop):
    out = customer_features(TOY.drop(columns=drop), "2023-06-01")
    assert len(out) == 0 and "country" in out.columns


def test_rejects_null_customer_ids_with_their_count():
    toy = TOY.copy()
    toy.loc[[1, 4], schema.CUSTOMER_ID] = pd.NA
    with pytest.raises(ValueError, match=r"null customer ids on 2 line\(s\)"):
        customer_features(toy, "2024-02-01")


@pytest.mark.parametrize("column", [schema.QUANTITY, schema.UNIT_PRICE])
def test_unknown_spend_is_rejected_not_read_as_zero(column):
    toy = TOY.copy()
    toy.loc[[2, 3], column] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=rf"2 line\(s\) with a missing or non-finite {column} \(first in order '2'\)"):
        customer_features(toy, "2024-02-01")
    # A bad value at or after the cutoff is never read.
    late = TOY.copy()
    late.loc[5, column] = np.nan
    assert customer_features(late, "2024-02-01").loc["a", "monetary_total"] == 45.0
