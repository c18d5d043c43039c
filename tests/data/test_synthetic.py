from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.cleaning import clean_transactions
from recsys.data.loaders import validate_transactions
from recsys.data.synthetic import generate_transactions

N_CUSTOMERS = 2000


@pytest.fixture(scope="module")
def lines() -> pd.DataFrame:
    return generate_transactions(n_customers=N_CUSTOMERS, seed=0)


@pytest.fixture(scope="module")
def purchases(lines) -> pd.DataFrame:
    return lines[~lines[schema.ORDER_ID].str.startswith("C")]


@pytest.fixture(scope="module")
def orders(purchases) -> pd.DataFrame:
    return purchases.drop_duplicates(schema.ORDER_ID)


def _top_category_share(frame: pd.DataFrame) -> float:
    per_category = frame.groupby([schema.CUSTOMER_ID, schema.CATEGORY]).size()
    per_customer = frame.groupby(schema.CUSTOMER_ID).size()
    return float((per_category.groupby(level=0).max() / per_customer).mean())


def _rebought_share(frame: pd.DataFrame) -> float:
    first = frame.groupby([schema.CUSTOMER_ID, schema.ITEM_ID])[schema.ORDER_ID].transform("first")
    return float((first != frame[schema.ORDER_ID]).mean())


def test_canonical_schema_with_every_column_filled(lines):
    assert {c: str(t) for c, t in lines.dtypes.items()} == schema.DTYPES
    pd.testing.assert_frame_equal(validate_transactions(lines, source="synthetic"), lines)
    assert not lines.isna().any().any()
    assert lines[schema.TIMESTAMP].is_monotonic_increasing
    assert lines[schema.TIMESTAMP].min() >= pd.Timestamp("2023-01-01")
    assert lines[schema.TIMESTAMP].max() < pd.Timestamp("2025-01-01")


def test_same_seed_same_frame_other_seed_other_frame(lines):
    pd.testing.assert_frame_equal(generate_transactions(n_customers=N_CUSTOMERS, seed=0), lines)
    other = generate_transactions(n_customers=N_CUSTOMERS, seed=1)
    assert len(other) != len(lines) or not other.equals(lines)


def test_size_grows_with_customers(purchases):
    per_customer = len(purchases) / N_CUSTOMERS
    assert 3.0 <= per_customer <= 6.0
    assert purchases[schema.CUSTOMER_ID].nunique() == N_CUSTOMERS
    bigger = generate_transactions(n_customers=2 * N_CUSTOMERS, n_items=500, seed=3)
    assert 1.7 < len(bigger) / len(purchases) < 2.3


def test_cancellations_are_rare_negative_and_removed_by_cleaning(lines):
    is_note = lines[schema.ORDER_ID].str.startswith("C")
    assert 0.005 < is_note.mean() < 0.03
    assert (lines.loc[is_note, schema.QUANTITY] < 0).all()
    assert (lines.loc[~is_note, schema.QUANTITY] >= 1).all()
    result = clean_transactions(lines)
    assert result.report.dropped["cancellation"] == is_note.sum()
    assert result.report.rows_out == (~is_note).sum()
    assert len(result.returns) == is_note.sum()


def test_long_tail_of_item_popularity(purchases):
    counts = purchases[schema.ITEM_ID].value_counts()
    top = counts.iloc[: len(counts) // 10].sum()
    assert top / counts.sum() > 0.40


def test_customers_differ_widely_in_frequency_and_lapse(orders):
    per_customer = orders.groupby(schema.CUSTOMER_ID).size().sort_values(ascending=False)
    assert (per_customer == 1).mean() > 0.4  # many one-time buyers
    assert per_customer.iloc[: N_CUSTOMERS // 10].sum() / per_customer.sum() > 0.3  # heavy buyers
    assert per_customer.max() >= 10 * per_customer.median()
    # Frequent first-year buyers would almost all order again in the last half year if nobody lapsed
    # (at four orders a year, a quiet half year has chance e^-2, about 14%).
    first_year = orders[orders[schema.TIMESTAMP] < "2024-01-01"].groupby(schema.CUSTOMER_ID).size()
    frequent = first_year[first_year >= 4].index
    last = orders.groupby(schema.CUSTOMER_ID)[schema.TIMESTAMP].max()
    assert len(frequent) >= 30
    assert (last[frequent] < "2024-07-01").mean() > 0.25


def test_spend_is_heterogeneous(purchases):
    spend = (purchases[schema.QUANTITY] * purchases[schema.UNIT_PRICE]).groupby(purchases[schema.CUSTOMER_ID])
    totals = spend.sum()
    assert totals.quantile(0.9) > 4 * totals.median()


def test_purchases_concentrate_in_few_categories_far_above_chance(purchases):
    sizes = purchases.groupby(schema.CUSTOMER_ID).size()
    active = purchases[purchases[schema.CUSTOMER_ID].isin(sizes[sizes >= 6].index)]
    shuffled = active.assign(
        **{schema.CATEGORY: np.random.default_rng(0).permutation(active[schema.CATEGORY].to_numpy())}
    )
    observed, chance = _top_category_share(active), _top_category_share(shuffled)
    assert observed > 0.6
    assert observed > chance + 0.25


def test_customers_rebuy_favourite_items(purchases):
    ordered = purchases.sort_values([schema.TIMESTAMP, schema.ORDER_ID])
    shuffled = ordered.assign(
        **{schema.ITEM_ID: np.random.default_rng(0).permutation(ordered[schema.ITEM_ID].to_numpy())}
    )
    assert _rebought_share(ordered) > 0.15
    assert _rebought_share(ordered) > 2 * _rebought_share(shuffled)


def test_seasonality_and_weekly_cycle(orders):
    per_day = orders.set_index(schema.TIMESTAMP).resample("D").size()
    month = per_day.index.month
    assert per_day[month >= 11].mean() > 1.5 * per_day[(month == 7) | (month == 8)].mean()
    per_weekday = orders[schema.TIMESTAMP].dt.weekday.value_counts()
    assert per_weekday.max() > 1.15 * per_weekday.min()


def test_orders_have_several_lines(purchases):
    per_order = purchases.groupby(schema.ORDER_ID).size()
    assert 1.5 < per_order.mean() < 3.0
    assert (per_order > 1).mean() > 0.4
    assert not purchases.duplicated([schema.ORDER_ID, schema.ITEM_ID]).any()


def test_items_have_one_readable_name_category_and_price(purchases, lines):
    per_item = purchases.groupby(schema.ITEM_ID)[[schema.ITEM_NAME, schema.CATEGORY, schema.UNIT_PRICE]].nunique()
    assert (per_item == 1).all().all()
    assert lines[schema.ITEM_NAME].str.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+| of \d)+").all()
    assert lines[schema.CATEGORY].nunique() == 12
    prices = purchases.drop_duplicates(schema.ITEM_ID)[schema.UNIT_PRICE]
    assert (prices > 0).all() and np.log(prices).std() > 0.3


def test_a_few_countries_with_one_dominant(orders):
    shares = orders.drop_duplicates(schema.CUSTOMER_ID)[schema.COUNTRY].value_counts(normalize=True)
    assert 4 <= len(shares) <= 10
    assert shares.index[0] == "United Kingdom" and shares.iloc[0] > 0.7


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="n_customers"):
        generate_transactions(n_customers=0)
    with pytest.raises(ValueError, match="n_categories"):
        generate_transactions(n_categories=99)
    with pytest.raises(ValueError, match="n_items"):
        generate_transactions(n_items=3, n_categories=5)
    with pytest.raises(ValueError, match="before start"):
        generate_transactions(start="2024-01-01", end="2023-01-01")


def test_tiny_shapes_work():
    one = generate_transactions(n_customers=1, n_items=1, n_categories=1, start="2024-01-01", end="2024-01-01")
    assert one[schema.CUSTOMER_ID].unique().tolist() == ["10001"]
    assert (one[schema.TIMESTAMP].dt.normalize() == pd.Timestamp("2024-01-01")).all()
