"""Per-customer steps on Dask partitions answer exactly as on the whole pandas frame."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.customers.features import customer_features
from recsys.data import clean_transactions, generate_transactions, schema
from recsys.models.customers import summarize_purchases
from training.partitioned import per_customer

dd = pytest.importorskip("dask.dataframe", reason="the scale extra (dask) runs steps on partitions")

CUTOFF = "2023-10-01"


@pytest.fixture(scope="module")
def shop():
    cleaned = clean_transactions(generate_transactions(n_customers=400, n_items=80, start="2023-01-01",
                                                       end="2023-12-31", seed=5))
    return cleaned.transactions, cleaned.returns


def test_customer_features_on_partitions_equal_the_whole_frame(shop):
    transactions, returns = shop
    assert len(returns) > 0  # the returns are partitioned along with the transactions
    # row-order partitions split customers across them: the step must see each customer whole
    split = dd.from_pandas(transactions, npartitions=5)
    assert split.map_partitions(lambda p: p[schema.CUSTOMER_ID].drop_duplicates()).compute().duplicated().any()
    got = per_customer(customer_features, split, CUTOFF, frames={"returns": dd.from_pandas(returns, npartitions=3)},
                       npartitions=4)
    want = customer_features(transactions, CUTOFF, returns)
    assert len(want) > 100 and want["return_count"].sum() > 0
    pd.testing.assert_frame_equal(got, want)


def test_purchase_summary_on_partitions_equals_the_whole_frame(shop):
    transactions, _ = shop
    got = per_customer(summarize_purchases, dd.from_pandas(transactions, npartitions=7), CUTOFF, time_unit="W")
    pd.testing.assert_frame_equal(got, summarize_purchases(transactions, CUTOFF, time_unit="W"))


def test_a_partition_without_customers_adds_nothing(shop):
    transactions, _ = shop
    few = transactions[transactions[schema.CUSTOMER_ID].isin(transactions[schema.CUSTOMER_ID].unique()[:2])]
    got = per_customer(customer_features, dd.from_pandas(few, npartitions=2), CUTOFF, npartitions=6)
    pd.testing.assert_frame_equal(got, customer_features(few, CUTOFF))


def test_inputs_are_checked(shop):
    transactions, _ = shop
    with pytest.raises(TypeError, match="transactions must be a dask DataFrame, got DataFrame"):
        per_customer(customer_features, transactions, CUTOFF)
    without_ids = dd.from_pandas(transactions.drop(columns=schema.CUSTOMER_ID), npartitions=2)
    with pytest.raises(ValueError, match="returns lack the column 'customer_id'"):
        per_customer(customer_features, dd.from_pandas(transactions, npartitions=2), CUTOFF,
                     frames={"returns": without_ids})
