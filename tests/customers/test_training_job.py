"""The customer-intelligence job on a small synthetic shop: profiles, segments, and what MLflow recorded."""

from __future__ import annotations

import json
import os

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recsys.customers.churn import ChurnConfig
from recsys.customers.features import customer_features
from recsys.customers.rfm import SEGMENTS
from recsys.data import clean_transactions, generate_transactions, schema
from recsys.records import CustomerProfile
from training.customers import CustomerIntelligenceConfig, lifetime_value, run_customer_intelligence
from training.settings import TrainingSettings

FAST = CustomerIntelligenceConfig(churn=ChurnConfig(num_boost_round=100, n_folds=3), churn_training_cutoffs=2,
                                  backtest_cutoffs=2, k_range=(4, 5))
ONE_WINDOW = CustomerIntelligenceConfig(churn=FAST.churn, churn_training_cutoffs=1, backtest_cutoffs=1)


_MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for name in _MLFLOW_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield TrainingSettings(var_dir=tmp_path / "var", mlflow_experiment="customers-test")
    # The run wrote this test's store into both variables. Left there, a later test's monkeypatch would
    # put it back after that test's own run, and tracking would take the stale store for the user's.
    for name in _MLFLOW_VARIABLES:
        os.environ.pop(name, None)


def test_job_builds_profiles_and_logs_the_run(settings):
    cleaned = clean_transactions(generate_transactions(n_customers=1200, n_items=120, start="2023-01-01",
                                                       end="2024-06-30", seed=2))
    cutoff = pd.Timestamp("2024-06-01")
    result = run_customer_intelligence(cleaned.transactions, cleaned.returns, cutoff, settings, config=FAST)

    profiles = result.profiles
    assert profiles and all(isinstance(p, CustomerProfile) for p in profiles)
    assert len({p.customer_id for p in profiles}) == len(profiles)
    assert all(p.segment in SEGMENTS and 1 <= p.recency_score <= 5 for p in profiles)
    assert all(0.0 <= p.churn_probability <= 1.0 and len(p.churn_reasons) <= 3 for p in profiles)
    assert all(p.cluster_name for p in profiles)
    if result.clv_status == "ok":
        assert all(p.clv is not None and p.p_alive is not None for p in profiles)
    else:
        assert result.clv_status.startswith("degenerate") and all(p.clv is None for p in profiles)
    frame = result.profiles_frame()
    assert len(frame) == len(profiles) and frame.index.name == "customer_id"
    assert sum(s["size"] for s in result.segments) == len(profiles)
    assert {"name", "definition", "size", "revenue_share"} <= set(result.segments[0])
    assert all("centroid" in c and "name" in c for c in result.clusters)
    assert result.churn_metrics["status"] == "ok" and len(result.churn_metrics["backtest"]) == 2
    assert 0.5 < result.churn_metrics["latest"]["roc_auc"] <= 1.0

    run = mlflow.get_run(result.run_id)
    assert run.data.params["cutoff"] == str(cutoff)
    metrics = run.data.metrics
    assert metrics["customers"] == len(profiles)
    assert metrics["segment.champions.size"] == next(s["size"] for s in result.segments if s["name"] == "Champions")
    assert "segment.cant_lose_them.revenue_share" in metrics
    assert {"churn.latest.roc_auc", "churn.latest.brier", "churn.backtest.1.pr_auc"} <= set(metrics)
    assert "clv.bgnbd.r" in metrics and metrics["clv.degenerate"] == float(result.clv_status != "ok")
    assert run.data.tags["clv_status"] == result.clv_status
    assert run.data.tags["numerics.numpy"] == np.__version__  # every run records its numeric kernels
    client = MlflowClient()
    artifacts = {a.path for folder in ("plots", "segments", "clusters")
                 for a in client.list_artifacts(result.run_id, folder)}
    assert {"plots/cohort_retention.png", "plots/segments.png", "plots/churn_calibration.png",
            "segments/segments.csv", "clusters/model.json"} <= artifacts

    # The logged cluster model keeps ids on the next run.
    model = json.loads(mlflow.artifacts.load_text(f"runs:/{result.run_id}/clusters/model.json"))
    again = run_customer_intelligence(cleaned.transactions, cleaned.returns, cutoff + pd.Timedelta(days=14),
                                      settings, previous_clusters=model, config=ONE_WINDOW)
    assert [c["id"] for c in again.clusters] == [c["id"] for c in result.clusters]
    assert [c["name"] for c in again.clusters] == [c["name"] for c in result.clusters]


def test_lifetime_value_is_served_only_from_usable_fits():
    cutoff = pd.Timestamp("2024-06-01")
    healthy = clean_transactions(generate_transactions(n_customers=3000, n_items=60, start="2022-01-01",
                                                       end="2024-05-31", seed=1)).transactions
    customers = pd.Index(sorted(healthy["customer_id"].unique()))
    values, status, params = lifetime_value(healthy, cutoff, customers, FAST)
    assert status == "ok" and set(params) == {"bgnbd", "gamma_gamma"}
    assert len(values["clv"]) == len(customers) and (values["clv"] > 0).all()
    assert ((values["p_alive"] > 0) & (values["p_alive"] <= 1)).all() and (values["expected"] >= 0).all()

    # Nobody ever lapses: everyone keeps buying up to the cutoff, so dropout is not identified.
    steady = _steady_shop(cutoff)
    customers = pd.Index(sorted(steady["customer_id"].unique()))
    values, status, params = lifetime_value(steady, cutoff, customers, FAST)
    assert status.startswith("degenerate: BG/NBD") and "bgnbd" in params
    assert values == {"p_alive": None, "expected": None, "clv": None}


def test_repeat_customers_without_spend_are_valued_but_left_out_of_the_spend_fit():
    cutoff = pd.Timestamp("2024-06-01")
    shop = clean_transactions(generate_transactions(n_customers=3000, n_items=60, start="2022-01-01",
                                                    end="2024-05-31", seed=1)).transactions
    orders = shop.groupby("customer_id")[schema.ORDER_ID].nunique()
    free = orders[orders >= 3].index[:2]  # repeat customers whose orders were all free (price 0 kept)
    shop.loc[shop["customer_id"].isin(free), schema.UNIT_PRICE] = 0.0
    customers = pd.Index(sorted(shop["customer_id"].unique()))
    values, status, params = lifetime_value(shop, cutoff, customers, FAST)
    assert status == "ok" and params["gamma_gamma"]["repeat_customers_without_spend"] == 2
    assert np.isfinite(values["clv"][customers.get_indexer(free)]).all()

    # two paying repeat customers cannot fit three spend parameters: no values, not a crash
    paying = orders[orders >= 2].index[:2]
    shop.loc[~shop["customer_id"].isin(paying), schema.UNIT_PRICE] = 0.0
    values, status, _ = lifetime_value(shop, cutoff, customers, FAST)
    assert status == "degenerate: Gamma-Gamma: 2 repeat customers with positive spend to learn from, 3 needed"
    assert values["clv"] is None and values["p_alive"] is not None


def _steady_shop(cutoff: pd.Timestamp) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for customer in range(300):
        gap = rng.integers(5, 40)
        day = cutoff - pd.Timedelta(days=int(rng.integers(1, gap + 1)))
        while day > cutoff - pd.Timedelta(days=365):
            rows.append((f"o{len(rows)}", f"c{customer}", day))
            day -= pd.Timedelta(days=int(gap))
    order, customer, time = zip(*rows, strict=True)
    return pd.DataFrame({
        schema.ORDER_ID: pd.Series(order, dtype="string"), schema.CUSTOMER_ID: pd.Series(customer, dtype="string"),
        schema.ITEM_ID: pd.Series(["x"] * len(rows), dtype="string"), schema.TIMESTAMP: pd.to_datetime(list(time)),
        schema.QUANTITY: np.ones(len(rows)), schema.UNIT_PRICE: np.full(len(rows), 10.0),
    })


def _lines(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """Order lines of one item each from ``(order_id, customer_id, day, spend)``."""
    order, customer, day, spend = zip(*rows, strict=True)
    return pd.DataFrame({
        schema.ORDER_ID: pd.Series(order, dtype="string"), schema.CUSTOMER_ID: pd.Series(customer, dtype="string"),
        schema.ITEM_ID: pd.Series(["x"] * len(rows), dtype="string"), schema.TIMESTAMP: pd.to_datetime(list(day)),
        schema.QUANTITY: np.ones(len(rows)), schema.UNIT_PRICE: np.asarray(spend, dtype=np.float64),
    })


def _returner_shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten customers spending 10, 20, ..., 100 over a January and a February order; "big" bought 10,000
    on 5 March and returned all of it on 20 March. No purchase after 5 March."""
    rows = [(f"o{i}-{j}", f"c{i}", f"2024-0{1 + j}-1{i % 10}", 5.0 * (i + 1)) for i in range(10) for j in range(2)]
    transactions = _lines([*rows, ("big-1", "big", "2024-03-05", 10_000.0)])
    return transactions, _lines([("C-big-1", "big", "2024-03-20", 10_000.0)])


def test_segment_revenue_and_profile_monetary_are_spend_net_of_returns(settings):
    transactions, returns = _returner_shop()
    result = run_customer_intelligence(transactions, returns, "2024-04-01", settings, config=FAST)

    big = next(p for p in result.profiles if p.customer_id == "big")
    assert big.monetary == 0.0 and big.monetary_score == 1
    assert next(p for p in result.profiles if p.customer_id == "c9").monetary == 100.0
    assert sum(s["revenue"] for s in result.segments) == pytest.approx(550.0)
    big_segment = next(s for s in result.segments if s["name"] == big.segment)
    assert big_segment["revenue"] == pytest.approx(sum(p.monetary for p in result.profiles
                                                       if p.segment == big.segment))
    assert sum(s["revenue_share"] for s in result.segments) == pytest.approx(1.0)


def test_cohort_retention_is_observed_up_to_the_jobs_cutoff(settings):
    transactions, returns = _returner_shop()
    retention = run_customer_intelligence(transactions, returns, "2024-04-01", settings, config=ONE_WINDOW,
                                          ).cohort_retention
    # The cutoff, not the last purchase (5 March), ends the observation: all of March has passed.
    january = retention.loc[pd.Period("2024-01", "M")]
    assert [january[1], january[2]] == [1.0, 0.0]

    # A cutoff inside March observes February at most: January's customers have no third month yet.
    early = run_customer_intelligence(transactions, returns, "2024-03-10", settings, config=ONE_WINDOW)
    assert list(early.cohort_retention.columns) == ["cohort_size", 0, 1]


def test_lifetime_value_takes_integer_customer_ids_as_customer_features_index_them():
    cutoff = pd.Timestamp("2024-06-01")
    shop = clean_transactions(generate_transactions(n_customers=1500, n_items=60, start="2022-01-01",
                                                    end="2024-05-31", seed=1)).transactions
    shop[schema.CUSTOMER_ID] = shop[schema.CUSTOMER_ID].astype(np.int64)
    customers = customer_features(shop, cutoff).index  # text ids: "10021"
    values, status, _ = lifetime_value(shop, cutoff, customers, FAST)
    assert status == "ok" and np.isfinite(values["clv"]).all() and len(values["clv"]) == len(customers)

    with pytest.raises(ValueError, match=r"1 of \d+ customers have no purchase before .*: nobody"):
        lifetime_value(shop, cutoff, customers.append(pd.Index(["nobody"])), FAST)
