"""The churn benchmark's population on Online Retail: 3,362 customers, 42.9% churned."""

from __future__ import annotations

import pytest

from recsys.customers.churn import churn_labels
from recsys.data import CleaningRules, clean_transactions, load_online_retail

pytestmark = pytest.mark.data


def test_population_and_base_rate_at_the_test_cutoff(online_retail_path):
    cleaned = clean_transactions(load_online_retail(online_retail_path), CleaningRules(non_product_items=frozenset()))
    assert len(cleaned.transactions) == 397_884
    labels = churn_labels(cleaned.transactions, "2011-09-09", window_days=91)
    assert len(labels) == 3362
    assert round(labels.mean(), 3) == 0.429
    early = churn_labels(cleaned.transactions, "2011-06-09", window_days=91)
    assert len(early) == 2787 and round(early.mean(), 3) == 0.516
