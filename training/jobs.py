"""The whole batch: recommendations and customer intelligence from one cleaned data set, published
together with the offer catalogue as ONE snapshot, so that every answer of the API comes from the same
training run."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from feature_store import Manifest, open_store
from recsys.customers.clusters import CustomerClusters
from recsys.data import schema
from recsys.records import CustomerProfile
from training import tracking
from training.customers import RUN_NAME as CUSTOMERS_RUN_NAME
from training.customers import CustomerIntelligence, run_customer_intelligence
from training.pipeline import TrainConfig, TrainResult, load_and_clean, run_training
from training.progress import Reporter
from training.publish import PublishOptions, SnapshotPart, publish_bundle
from training.publish_customers import customer_snapshot_part
from training.publish_offers import offer_catalogue_part_from_file
from training.settings import TrainingSettings
from training.store import check_store

CUSTOMER_PART_ARTIFACT = "snapshot_part"
CUSTOMER_RUN_TAG = "customer_intelligence_run_id"


@dataclass
class JobResult:
    train: TrainResult
    customers: CustomerIntelligence | None
    manifest: Manifest | None


def run_all(config: TrainConfig, settings: TrainingSettings, reporter: Reporter | None = None, *,
            customers: bool = True, publish: bool = True, catalogue: Path | None = None,
            run_name: str = "train", from_experiment: tuple[str, str] | None = None) -> JobResult:
    """Train, compute customer intelligence and publish. ``from_experiment`` (an experiment's parent run
    id and a setting) replaces ``config``'s personal model with what that run chose on validation."""
    reporter = reporter or Reporter()
    # Validate the catalogue and the alias, and reach MLflow and the store, before hours of training, not after.
    offers_part = offer_catalogue_part_from_file(catalogue or settings.offer_catalogue) if publish else None
    preflight(settings, publish=publish)
    if from_experiment is not None:
        from training.experiment_winner import train_config_with_winner

        config, winner = train_config_with_winner(config, *from_experiment)
        reporter.note(f"Personal model from experiment run {from_experiment[0]} (setting {winner.setting}): "
                      f"{winner.label} {json.dumps(winner.params, sort_keys=True)}, chosen by {winner.selected_by} "
                      f"{winner.validation_score:.4f}, on {winner.weighting} weighting")
    cleaned = load_and_clean(config, reporter)
    train = run_training(config, settings, reporter, run_name=run_name, cleaned=cleaned)
    intelligence = None
    if customers:
        with reporter.step("Customer intelligence: segments, clusters, churn, lifetime value"):
            cutoff = cleaned.transactions[schema.TIMESTAMP].max().normalize() + pd.Timedelta(days=1)
            intelligence = run_customer_intelligence(cleaned.transactions, cleaned.returns, cutoff, settings,
                                                     previous_clusters=previous_cluster_model(settings))
            log_customer_part(intelligence)
            MlflowClient().set_tag(train.run_id, CUSTOMER_RUN_TAG, intelligence.run_id)
    manifest = None
    if publish:
        parts = [offers_part]
        if intelligence is not None:
            parts.insert(0, customer_snapshot_part(intelligence.profiles, intelligence.segments,
                                                   intelligence.clusters, info=customer_info(intelligence)))
        served = replace(train.registered, alias=settings.model_alias)
        try:
            manifest = publish_snapshot(train.bundle, model_info(served), settings, reporter, parts)
        except Exception as exc:
            exc.add_note(f"model version {served.version} is registered without the serving alias; serve it with "
                         f"`recsys models promote {served.version}` once the store answers")
            raise
        # the serving alias moves only once the version is served: an alias on a version nobody serves
        # (a publish that failed) would mislead
        tracking.set_alias(settings.registered_model, settings.model_alias, served.version)
        train = replace(train, registered=served)
    return JobResult(train, intelligence, manifest)


def preflight(settings: TrainingSettings, *, publish: bool) -> None:
    """Check the serving alias, and reach the store (when publishing) and MLflow, so that a job stops
    before its long work rather than after it."""
    tracking.check_alias(settings.model_alias, "RECSYS_MODEL_ALIAS")
    if publish:
        check_store(settings)
    tracking.check_tracking(settings)


def publish_snapshot(bundle, model: dict[str, Any], settings: TrainingSettings, reporter: Reporter,
            parts: list[SnapshotPart]) -> Manifest:
    # its callers checked the store before their long work: open it without a second check
    store = open_store(settings.store_url, prefix=settings.store_prefix, retain=settings.snapshots_retained)
    try:
        return publish_bundle(bundle, store, model, PublishOptions(top_n=settings.publish_top_n), reporter,
                              parts=parts)
    finally:
        store.close()


def publish_registered(alias_or_version: str, catalogue: Path, settings: TrainingSettings,
                       reporter: Reporter) -> tuple[Manifest, str | None]:
    """Publish a registered version (by alias or number) with its run's customer part and ``catalogue``
    as the new current snapshot, then point the serving alias at it: only once the publish succeeded, so
    the alias never names a version nothing serves. The manifest, and the version the alias named before."""
    from training.bundle import ModelBundle
    from training.pipeline import BUNDLE_ARTIFACT

    parts = [offer_catalogue_part_from_file(catalogue)]
    preflight(settings, publish=True)  # before the bundle is downloaded and scored
    registered = replace(tracking.resolve_version(settings.registered_model, alias_or_version),
                         alias=settings.model_alias)
    with tempfile.TemporaryDirectory() as tmp, reporter.step(f"Loading model version {registered.version}"):
        folder = tracking.download_run_artifacts(registered.run_id, BUNDLE_ARTIFACT, Path(tmp))
        bundle = ModelBundle.load(folder)
        customer_part = customer_part_of_run(registered.run_id)
    if customer_part is not None:
        parts.insert(0, customer_part)
    manifest = publish_snapshot(bundle, model_info(registered), settings, reporter, parts)
    return manifest, tracking.set_alias(settings.registered_model, settings.model_alias, registered.version)


def model_info(registered: tracking.RegisteredVersion) -> dict[str, Any]:
    return {"name": registered.name, "version": registered.version, "run_id": registered.run_id,
            "alias": registered.alias}


def customer_info(intelligence: CustomerIntelligence) -> dict[str, Any]:
    """What every profile answer says about how it was made."""
    return {"run_id": intelligence.run_id, "cutoff": str(intelligence.cutoff), "clv_status": intelligence.clv_status,
            "churn_status": intelligence.churn_metrics.get("status")}


def previous_cluster_model(settings: TrainingSettings) -> CustomerClusters | None:
    """The cluster model of the latest customer-intelligence run, so cluster ids stay the same."""
    tracking.configure_tracking(settings)
    experiment = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is None:
        return None
    runs = mlflow.search_runs([experiment.experiment_id], filter_string=f"tags.job = '{CUSTOMERS_RUN_NAME}'",
                              order_by=["attributes.start_time DESC"], max_results=1, output_format="list")
    if not runs:
        return None
    try:
        text = mlflow.artifacts.load_text(f"{runs[0].info.artifact_uri}/clusters/model.json")
    except Exception:  # an older run without the artifact: clusters are then numbered afresh
        return None
    return CustomerClusters.from_dict(json.loads(text))


def log_customer_part(intelligence: CustomerIntelligence) -> None:
    """Keep what the snapshot needs in the run, so `recsys publish` can republish it later."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "profiles.jsonl").write_bytes(b"\n".join(p.to_bytes() for p in intelligence.profiles))
        (folder / "segments.json").write_text(json.dumps(intelligence.segments, default=str))
        (folder / "clusters.json").write_text(json.dumps(intelligence.clusters, default=str))
        (folder / "info.json").write_text(json.dumps(customer_info(intelligence)))
        MlflowClient().log_artifacts(intelligence.run_id, str(folder), CUSTOMER_PART_ARTIFACT)


def customer_part_of_run(train_run_id: str) -> SnapshotPart | None:
    """The customer part logged beside a training run (see :func:`log_customer_part`), if any."""
    run = mlflow.get_run(train_run_id)
    ci_run_id = run.data.tags.get(CUSTOMER_RUN_TAG)
    if not ci_run_id:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tracking.download_run_artifacts(ci_run_id, CUSTOMER_PART_ARTIFACT, Path(tmp)))
        profiles = [CustomerProfile.from_bytes(line) for line in (folder / "profiles.jsonl").read_bytes().splitlines()
                    if line]
        segments = json.loads((folder / "segments.json").read_text())
        clusters = json.loads((folder / "clusters.json").read_text())
        info = json.loads((folder / "info.json").read_text())
    return customer_snapshot_part(profiles, segments, clusters, info=info)
