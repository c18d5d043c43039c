"""Train on synthetic data, publish to a real Redis, answer over HTTP: the whole path, checked at each
hand-over (what MLflow recorded, what is in Redis, what the API says)."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from recsys.data import CleaningRules
from recsys.records import RECORD_FORMAT
from serving.app import create_app
from serving.settings import ServingSettings
from tests.conftest import redis_url
from training.jobs import run_all
from training.pipeline import TrainConfig
from training.settings import TrainingSettings
from training.sources import DataSource

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def settings(tmp_path, monkeypatch, redis_prefix):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return TrainingSettings(var_dir=tmp_path / "var", registered_model="e2e-recommender", store_url=redis_url(),
                            store_prefix=redis_prefix, publish_top_n=20)


def test_train_publish_serve(settings, redis_prefix):
    config = TrainConfig(source=DataSource("synthetic", "canonical", synthetic_customers=600, synthetic_items=150,
                                           seed=3), cleaning=CleaningRules(), holdout_days=60)
    job = run_all(config, settings)
    result, manifest = job.train, job.manifest

    # MLflow: one run with parameters, data summary, holdout metrics, the bundle, a registered version.
    run = mlflow.get_run(result.run_id)
    assert run.data.params["data.source"] == "synthetic"
    assert run.data.tags["job"] == "train" and run.data.tags["numerics.blas"]
    assert run.data.metrics["data.rows_out"] > 0
    assert 0 < run.data.metrics["holdout.personal.ndcg_at_10"] <= 1
    assert "holdout.popular.recall_at_20" in run.data.metrics
    artifacts = {a.path for a in MlflowClient().list_artifacts(result.run_id, "bundle")}
    assert {"bundle/bundle.json", "bundle/personal.npz", "bundle/items.npy"} <= artifacts
    version = MlflowClient().get_model_version_by_alias("e2e-recommender", "champion")
    assert str(version.version) == result.registered.version and version.run_id == result.run_id

    # The customer-intelligence run is linked to the training run and logged its own metrics.
    customers_run = mlflow.get_run(run.data.tags["customer_intelligence_run_id"])
    assert customers_run.data.tags["job"] == "customer-intelligence"

    # Redis: the pointer, the manifest and per-customer values are there under the prefix.
    client = redis.Redis.from_url(redis_url())
    assert client.get(f"{redis_prefix}:current").decode() == manifest.snapshot_id
    assert manifest.counts["rec"] == len(result.bundle.customers)
    assert manifest.metadata["model"]["version"] == result.registered.version
    assert manifest.counts["profile"] == len(job.customers.profiles) > 0
    assert manifest.metadata["offer_catalogue_version"]

    customer = str(result.bundle.customers.ids[0])
    serving = ServingSettings(store_url=redis_url(), store_prefix=redis_prefix)
    with TestClient(create_app(serving)) as http:
        ready = http.get("/health/ready")
        personal = http.get(f"/v1/customers/{customer}/recommendations", params={"k": 5})
        first_purchases = http.get(f"/v1/customers/{customer}/recommendations",
                                   params={"k": 5, "exclude_purchased": True})
        unknown = http.get("/v1/customers/not-a-customer/recommendations", params={"k": 5})
        similar = http.get(f"/v1/items/{result.bundle.items.ids[0]}/similar", params={"k": 5})
        profile = http.get(f"/v1/customers/{customer}/profile")
        segments = http.get("/v1/segments")
        many = http.get("/v1/customers/not-a-customer/recommendations", params={"k": 100})
        popular = http.get("/v1/items/popular", params={"k": 100})
    assert ready.status_code == 200 and ready.json()["snapshot_id"] == manifest.snapshot_id
    body = personal.json()
    assert personal.status_code == 200 and body["source"] == "personalised"
    assert len(body["items"]) == 5 and all(i["source"].startswith("ranker/") for i in body["items"])
    assert body["snapshot_id"] == manifest.snapshot_id and body["model"]["version"] == result.registered.version
    assert unknown.json()["source"] == "fallback" and len(unknown.json()["items"]) == 5
    # without purchases: the ranker's own list of first purchases, as published
    assert manifest.metadata["record_format"] == RECORD_FORMAT == 3
    new_rows, _ = result.bundle.models["personal"].recommend(np.zeros(1, np.int64), 5, exclude_seen=True)
    assert [i["item_id"] for i in first_purchases.json()["items"]] == result.bundle.items.ids[new_rows[0]].tolist()
    assert not set(new_rows[0]) & set(result.bundle.history[0].indices)
    # the fallback lists hold every item sold, not publish_top_n (20): an answer fills up to k
    assert len(many.json()["items"]) == 100 and len(popular.json()["items"]) == 100
    assert similar.status_code == 200 and similar.json()["items"]
    assert profile.status_code == 200 and profile.json()["snapshot_id"] == manifest.snapshot_id
    assert profile.json()["segment"] in {s["name"] for s in segments.json()["segments"]}
