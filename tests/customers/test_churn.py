"""Churn labels, model, reasons and backtest on synthetic lapsing customers; cohort retention by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from recsys.customers.churn import (
    ChurnConfig,
    ChurnDataError,
    ChurnModel,
    backtest,
    calibration_table,
    churn_examples,
    churn_labels,
    classification_metrics,
    cohort_retention,
    training_cutoffs,
)
from recsys.data import clean_transactions, generate_transactions, schema

FAST = ChurnConfig(num_boost_round=150, n_folds=3)


def _toy(rows):
    customer, time = zip(*rows, strict=True)
    n = len(rows)
    return pd.DataFrame({
        schema.ORDER_ID: pd.Series([str(i) for i in range(n)], dtype="string"),
        schema.CUSTOMER_ID: pd.Series(customer, dtype="string"),
        schema.ITEM_ID: pd.Series(["x"] * n, dtype="string"),
        schema.TIMESTAMP: pd.to_datetime(list(time)),
        schema.QUANTITY: np.ones(n),
        schema.UNIT_PRICE: np.full(n, 10.0),
    })


@pytest.fixture(scope="module")
def shop():
    raw = generate_transactions(n_customers=2500, n_items=150, start="2022-01-01", end="2023-12-31", seed=11)
    return clean_transactions(raw)


def test_labels_by_hand():
    toy = _toy([("a", "2024-01-05"), ("a", "2024-02-10"), ("b", "2024-01-20"), ("b", "2024-04-15"),
                ("c", "2024-02-20"), ("d", "2024-05-01")])
    labels = churn_labels(toy, "2024-02-01", window_days=60)
    # a returns inside [Feb 1, Apr 1); b only after it; c and d were not customers yet.
    assert labels.to_dict() == {"a": 0, "b": 1}
    with pytest.raises(ChurnDataError, match="ends after the data"):
        churn_labels(toy, "2024-04-01", window_days=60)


def test_training_cutoffs_end_their_labels_by_the_cutoff():
    cutoffs = training_cutoffs("2024-06-01", window_days=90, n_cutoffs=3, spacing_days=30)
    assert cutoffs == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-02-02"), pd.Timestamp("2024-03-03")]
    assert cutoffs[-1] + pd.Timedelta(days=90) == pd.Timestamp("2024-06-01")


def test_model_beats_recency_alone_is_calibrated_and_explains(shop):
    t, r = shop.transactions, shop.returns
    train = churn_examples(t, training_cutoffs("2023-09-01", 90, n_cutoffs=3), r, window_days=90)
    test = churn_examples(t, ["2023-09-01"], r, window_days=90)
    model = ChurnModel(FAST).fit(train)
    p = model.predict_proba(test.features)
    ours = classification_metrics(test.labels, p)
    recency_auc = roc_auc_score(test.labels, test.features["recency_days"].to_numpy())
    assert ours["roc_auc"] > recency_auc + 0.01
    assert ours["brier"] < test.labels.mean() * (1 - test.labels.mean())  # better than the base rate alone
    assert abs(p.mean() - test.labels.mean()) < 0.08
    table = calibration_table(test.labels, p, n_bins=5)
    assert table["observed"].is_monotonic_increasing or table["observed"].diff().min() > -0.05
    assert (table["observed"].iloc[-1] - table["observed"].iloc[0]) > 0.3

    reasons = model.reasons(test.features.iloc[:50])
    assert len(reasons) == 50 and all(len(r) <= 3 for r in reasons)
    flat = [item for r in reasons for item in r]
    assert flat and all(set(item) == {"feature", "value", "contribution"} for item in flat)
    assert all(item["contribution"] > 0 and item["feature"] in model.columns_ for item in flat)
    for r in reasons:
        assert [item["contribution"] for item in r] == sorted((item["contribution"] for item in r), reverse=True)


def test_backtest_reports_each_cutoff(shop):
    result = backtest(shop.transactions, ["2023-06-01", "2023-09-01"], shop.returns, FAST)
    assert list(result["cutoff"]) == [pd.Timestamp("2023-06-01"), pd.Timestamp("2023-09-01")]
    assert {"roc_auc", "pr_auc", "brier", "base_rate", "n", "n_train"} <= set(result.columns)
    assert (result["roc_auc"] > 0.6).all() and result["base_rate"].between(0, 1).all()


def test_one_class_training_labels_are_refused():
    toy = _toy([("a", "2024-01-05"), ("a", "2024-02-10"), ("b", "2024-01-20"), ("b", "2024-02-12"),
                ("c", "2024-02-20")])
    with pytest.raises(ChurnDataError, match="nothing to learn"):
        ChurnModel(FAST).fit(churn_examples(toy, ["2024-02-01"], window_days=14))


def test_too_few_customers_for_the_folds_are_refused():
    toy = _toy([("a", "2024-01-05"), ("a", "2024-02-10"), ("b", "2024-01-20"), ("c", "2024-02-20")])
    with pytest.raises(ChurnDataError, match="customers"):
        ChurnModel(FAST).fit(churn_examples(toy, ["2024-02-01"], window_days=14))


def test_cohort_retention_by_hand():
    toy = _toy([
        ("a", "2024-01-03"), ("a", "2024-02-10"), ("a", "2024-03-01"),
        ("b", "2024-01-20"), ("b", "2024-03-15"),
        ("c", "2024-02-02"), ("c", "2024-02-20"),
        ("d", "2024-02-05"), ("d", "2024-03-30"),
    ])
    table = cohort_retention(toy, freq="M", observed_until="2024-04-01")
    assert table["cohort_size"].tolist() == [2, 2]
    jan, feb = table.iloc[0], table.iloc[1]
    assert [jan[0], jan[1], jan[2]] == [1.0, 0.5, 1.0]
    assert [feb[0], feb[1]] == [1.0, 0.5]
    assert np.isnan(feb[2])  # March is the last month: February's third month has not happened
    assert str(table.index[0]) == "2024-01"


def test_cohort_retention_leaves_a_partly_covered_last_month_unobserved():
    # The data end on 9 March: nobody could yet have bought in the rest of March.
    toy = _toy([
        ("a", "2024-01-03"), ("a", "2024-02-10"), ("a", "2024-03-01"),
        ("b", "2024-01-20"), ("b", "2024-02-15"),
        ("c", "2024-02-02"), ("c", "2024-03-09"),
        ("d", "2024-02-05"),
        ("e", "2024-03-04"),
    ])
    table = cohort_retention(toy, freq="M")
    jan, feb, mar = table.iloc[0], table.iloc[1], table.iloc[2]
    assert [jan[0], jan[1]] == [1.0, 1.0] and np.isnan(jan[2])
    assert feb[0] == 1.0 and np.isnan(feb[1])
    assert mar[0] == 1.0 and table["cohort_size"].tolist() == [2, 2, 1]
    # The job's cutoff decides: at midnight after 31 March the whole month is observed.
    whole = cohort_retention(toy, freq="M", observed_until="2024-04-01")
    assert [whole.iloc[0][2], whole.iloc[1][1]] == [0.5, 0.5]
    # A cutoff inside March leaves March out even where the data have nothing after it.
    assert np.isnan(cohort_retention(toy, freq="M", observed_until="2024-03-31").iloc[0][2])
    # Months observed with no purchase at all are 0, up to the oldest cohort's last whole month (May).
    later = cohort_retention(toy, freq="M", observed_until="2024-06-01")
    assert later.iloc[0][[3, 4]].tolist() == [0.0, 0.0] and later.columns[-1] == 4


def test_null_customer_ids_are_rejected_with_their_count():
    toy = _toy([("a", "2024-01-05"), (None, "2024-01-06"), (None, "2024-01-07"), ("a", "2024-03-01")])
    with pytest.raises(ValueError, match=r"null customer ids on 2 line\(s\)"):
        churn_labels(toy, "2024-02-01", window_days=20)
    with pytest.raises(ValueError, match=r"null customer ids on 2 line\(s\)"):
        cohort_retention(toy)
