"""The training job: load -> clean -> evaluate on a temporal holdout -> fit -> log to MLflow -> register."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from recsys.data import CleaningResult, CleaningRules, clean_transactions, schema
from recsys.data.interactions import build_interactions
from recsys.models.registry import create_model
from training import tracking
from training.bundle import ModelBundle, build_catalog, history_of
from training.evaluation import evaluate_models, make_holdout
from training.progress import Reporter
from training.settings import TrainingSettings
from training.sources import DataSource, load_source

BUNDLE_ARTIFACT = "bundle"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def build(self):
        return create_model(self.name, **self.params)


def default_roles() -> dict[str, ModelSpec]:
    """What each part of a snapshot is made from: personal lists, similar items, the fallbacks."""
    return {
        # The configuration chosen on validation by experiments/configs/online_retail.yaml.
        "personal": ModelSpec("ranker", {}),
        "similar": ModelSpec("item_knn", {"similarity": "bm25"}),
        "popular": ModelSpec("popularity", {}),
        "trending": ModelSpec("popularity", {"window_days": 30}),
    }


@dataclass(frozen=True)
class TrainConfig:
    source: DataSource = field(default_factory=DataSource)
    cleaning: CleaningRules = field(default_factory=CleaningRules)
    roles: dict[str, ModelSpec] = field(default_factory=default_roles)
    holdout_days: int = 90
    cutoff: str | None = None
    ks: tuple[int, ...] = (10, 20)
    evaluate: bool = True
    #: how purchases become interaction strengths (see :func:`recsys.data.build_interactions`)
    weighting: str = "orders"
    #: extra tags of the training run, e.g. the experiment run its personal model was chosen by
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    bundle: ModelBundle
    run_id: str
    registered: tracking.RegisteredVersion
    metrics: dict[str, dict[str, float]]
    data_summary: dict[str, Any]


def summarize(transactions: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows": int(len(transactions)),
        "customers": int(transactions[schema.CUSTOMER_ID].nunique()),
        "items": int(transactions[schema.ITEM_ID].nunique()),
        "orders": int(transactions[schema.ORDER_ID].nunique()),
        "first_timestamp": str(transactions[schema.TIMESTAMP].min()),
        "last_timestamp": str(transactions[schema.TIMESTAMP].max()),
        "revenue": round(float((transactions[schema.QUANTITY] * transactions[schema.UNIT_PRICE]).sum()), 2),
    }


class NoTransactionsError(ValueError):
    """The data source held no rows, or cleaning dropped them all."""


def load_and_clean(config: TrainConfig, reporter: Reporter | None = None) -> CleaningResult:
    reporter = reporter or Reporter()
    with reporter.step("Loading transactions"):
        raw = load_source(config.source)
    with reporter.step("Cleaning transactions"):
        cleaned = clean_transactions(raw, config.cleaning)
    reporter.note(str(cleaned.report))
    if cleaned.transactions.empty:
        raise NoTransactionsError(f"{config.source.describe().get('source')}: no transactions left to train on "
                                  f"({cleaned.report})")
    return cleaned


def run_training(config: TrainConfig, settings: TrainingSettings, reporter: Reporter | None = None,
                 run_name: str = "train", cleaned: CleaningResult | None = None) -> TrainResult:
    """The recommendation job; ``cleaned`` skips loading when the caller already has the data. The new
    version is registered with no alias: the serving alias moves when a publish has served it."""
    reporter = reporter or Reporter()
    with tracking.training_run(settings, run_name, tags={**config.tags, "job": "train"}) as run:
        tracking.log_params({"data": config.source.describe(), "cleaning": _rules_params(config.cleaning),
                             "holdout_days": config.holdout_days, "cutoff": config.cutoff,
                             "weighting": config.weighting,
                             "roles": {role: {"model": s.name, **s.params} for role, s in config.roles.items()}})
        cleaned = cleaned or load_and_clean(config, reporter)
        report = cleaned.report.to_dict()
        tracking.log_metrics(report, prefix="data.")
        summary = summarize(cleaned.transactions)
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)}, prefix="data.")
        mlflow.log_dict({"cleaning": report, "summary": summary}, "data_summary.json")

        metrics: dict[str, dict[str, float]] = {}
        if config.evaluate:
            with reporter.step("Evaluating on the temporal holdout"):
                holdout = make_holdout(cleaned.transactions, config.cutoff, config.holdout_days, config.weighting)
                evaluated = {role: spec.build for role, spec in config.roles.items() if role != "similar"}
                metrics = evaluate_models(evaluated, holdout, config.ks)
            mlflow.log_params({"holdout.cutoff": str(holdout.cutoff),
                               "holdout.customers": len(holdout.customers)})
            for name, values in metrics.items():
                tracking.log_metrics(values, prefix=f"holdout.{name}.")
            mlflow.log_dict(metrics, "holdout_metrics.json")

        with reporter.step("Fitting models on all data"):
            data = build_interactions(cleaned.transactions, weighting=config.weighting)
            models = {role: spec.build().fit(data) for role, spec in config.roles.items()}
        bundle = ModelBundle(
            customers=data.customers, items=data.items, catalog=build_catalog(cleaned.transactions, data.items),
            history=history_of(data), models=models,
            info={"reference_time": str(data.reference_time), "data": summary,
                  "roles": {role: asdict(spec) for role, spec in config.roles.items()}},
        )
        with reporter.step("Logging the bundle to MLflow and registering it"), tempfile.TemporaryDirectory() as tmp:
            folder = bundle.save(Path(tmp) / BUNDLE_ARTIFACT)
            tracking.log_artifacts(folder, BUNDLE_ARTIFACT)
            registered = tracking.register_bundle(run.info.run_id, BUNDLE_ARTIFACT, settings.registered_model,
                                                  description="Recommendation bundle: models, id maps, catalogue")
        mlflow.set_tag("registered_version", registered.version)
        return TrainResult(bundle, run.info.run_id, registered, metrics, summary)


def _rules_params(rules: CleaningRules) -> dict[str, Any]:
    params = asdict(rules)
    return {key: json.dumps(sorted(v)) if isinstance(v, frozenset | set) else v for key, v in params.items()}
