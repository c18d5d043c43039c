"""The customer-intelligence job: features, RFM segments, clusters, churn and lifetime value as of a
cutoff, logged to MLflow, returned as :class:`CustomerIntelligence` for publishing.

Everything is computed from purchases (and returns) before ``cutoff``:

* features and RFM scores / segments as of the cutoff; spend is net of returns wherever it is reported
  (segment revenue, a profile's ``monetary``), as the M score ranks it;
* behavioural clusters, their ids matched to ``previous_clusters`` when given;
* churn: trained on labels of the windows ending by the cutoff (the latest is
  ``[cutoff - window, cutoff)``), applied to everyone as of the cutoff; an out-of-time backtest at
  earlier cutoffs measures it (ROC-AUC, PR-AUC, Brier, base rate);
* BG/NBD P(alive) and expected purchases over ``horizon_days``, and Gamma-Gamma ``clv_months``-month
  CLV. A degenerate fit (see :class:`recsys.models.customers.DegenerateFitError`) is reported in
  ``clv_status`` and the fields it would fill stay ``None``: nonsense is never served.

Each run logs parameters, metrics (segment sizes and revenue shares, churn backtest, BG/NBD and
Gamma-Gamma parameters or the degenerate reason), tables (segments, clusters, backtest, cohort
retention) and plots (cohort retention curves, churn calibration, segment sizes and revenue).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from recsys.customers.churn import (
    ChurnConfig,
    ChurnDataError,
    ChurnModel,
    backtest,
    calibration_table,
    churn_examples,
    cohort_retention,
    evaluate_at,
    training_cutoffs,
)
from recsys.customers.clusters import CustomerClusters, fit_clusters
from recsys.customers.features import customer_features
from recsys.customers.rfm import net_spend, rfm_scores, segment_summary
from recsys.data import schema
from recsys.models.customers import BetaGeoModel, DegenerateFitError, GammaGammaModel, summarize_purchases
from recsys.records import CustomerProfile
from training import tracking
from training.settings import TrainingSettings

RUN_NAME = "customer-intelligence"


@dataclass(frozen=True)
class CustomerIntelligenceConfig:
    """Knobs of the job.

    Attributes:
        churn: the churn model (label window, features, LightGBM, calibration).
        churn_training_cutoffs: label windows stacked to train the served churn model, ``spacing_days``
            apart, the latest ending at the cutoff.
        backtest_cutoffs: out-of-time evaluation cutoffs, the latest at ``cutoff - churn.window_days``
            (the last one whose outcome is known), then ``spacing_days`` apart.
        spacing_days: days between stacked training cutoffs and between backtest cutoffs.
        horizon_days: the horizon of expected purchases.
        clv_months: CLV horizon; ``discount_rate`` is monthly.
        k_range: numbers of clusters to choose from.
        reasons: churn reasons kept per customer.
        seed: seeds clustering and churn.
    """

    churn: ChurnConfig = field(default_factory=ChurnConfig)
    churn_training_cutoffs: int = 3
    backtest_cutoffs: int = 3
    spacing_days: int = 30
    horizon_days: int = 90
    clv_months: int = 12
    discount_rate: float = 0.01
    k_range: tuple[int, ...] = (4, 5, 6, 7, 8)
    reasons: int = 3
    seed: int = 0


@dataclass
class CustomerIntelligence:
    """What one run produced, as of ``cutoff``.

    Attributes:
        cutoff: the instant everything is computed as of (purchases strictly before it).
        profiles: one :class:`recsys.records.CustomerProfile` per customer with a purchase before the
            cutoff, sorted by customer id.
        segments: one dict per RFM segment, in report order: ``name``, ``definition``, ``size``,
            ``share``, ``revenue`` (spend net of returns), ``revenue_share``, ``mean_recency_score``,
            ``mean_frequency_score``, ``mean_monetary_score``, ``mean_churn_probability`` (``None`` when empty
            or unknown).
        clusters: one dict per cluster: ``id``, ``name``, ``size``, ``share``, ``means`` (feature ->
            mean in original units), ``z`` (centroid in standard deviations) and ``centroid`` (log1p
            feature space), JSON-ready.
        cluster_model: the fitted :class:`recsys.customers.clusters.CustomerClusters`; pass it (or its
            ``to_dict()``, logged as ``clusters/model.json``) as ``previous_clusters`` next time to keep
            cluster ids.
        clv_status: ``"ok"`` or ``"degenerate: <model>: <reasons>"``; when not ok the lifetime-value
            fields of the profiles are ``None`` (``p_alive`` and ``expected_purchases`` too when BG/NBD
            itself is degenerate).
        churn_metrics: ``latest`` (metrics at the last backtest cutoff), ``backtest`` (a list of
            per-cutoff metrics) and ``status`` (``"ok"`` or why churn could not be trained).
        clv_params: fitted BG/NBD and Gamma-Gamma parameters (whether or not degenerate).
        cohort_retention: monthly cohort retention matrix (see :func:`recsys.customers.churn.cohort_retention`).
        run_id: the MLflow run.
    """

    cutoff: pd.Timestamp
    profiles: list[CustomerProfile]
    segments: list[dict]
    clusters: list[dict]
    cluster_model: CustomerClusters
    clv_status: str
    churn_metrics: dict[str, Any]
    clv_params: dict[str, dict[str, float]]
    cohort_retention: pd.DataFrame
    run_id: str | None = None

    def profiles_frame(self) -> pd.DataFrame:
        """The profiles as a frame indexed by customer id (``churn_reasons`` stays a list per row)."""
        frame = pd.DataFrame([asdict(p) for p in self.profiles])
        if frame.empty:
            return pd.DataFrame(columns=[f for f in CustomerProfile.__dataclass_fields__ if f != "customer_id"])
        return frame.set_index("customer_id")


def run_customer_intelligence(
    transactions: pd.DataFrame,
    returns: pd.DataFrame | None,
    cutoff: str | pd.Timestamp,
    settings: TrainingSettings,
    previous_clusters: CustomerClusters | dict | None = None,
    config: CustomerIntelligenceConfig | None = None,
) -> CustomerIntelligence:
    """Run the job (see the module docstring) and log it to MLflow."""
    config = config or CustomerIntelligenceConfig()
    cutoff = pd.Timestamp(cutoff)
    if isinstance(previous_clusters, dict):
        previous_clusters = CustomerClusters.from_dict(previous_clusters)
    # Nothing at or after the cutoff exists for this job, whatever the caller passed.
    transactions = transactions.loc[(pd.to_datetime(transactions[schema.TIMESTAMP]) < cutoff).to_numpy()]
    if returns is not None:
        returns = returns.loc[(pd.to_datetime(returns[schema.TIMESTAMP]) < cutoff).to_numpy()]
    if transactions.empty:
        raise ValueError(f"no purchases before the cutoff {cutoff}")

    with tracking.training_run(settings, RUN_NAME, tags={"job": "customer-intelligence"}) as run:
        tracking.log_params({"cutoff": str(cutoff), "rows": len(transactions),
                             "churn": {k: v for k, v in asdict(config.churn).items() if k != "lgbm_params"},
                             "churn.lgbm": config.churn.lgbm_params,
                             "job": {k: v for k, v in asdict(config).items() if k != "churn"},
                             "previous_clusters": previous_clusters is not None})
        features = customer_features(transactions, cutoff, returns, config.churn.feature_windows)
        scores = rfm_scores(features)
        cluster_model, cluster_ids = fit_clusters(features, config.k_range, previous_clusters, seed=config.seed)
        churn = _churn(transactions, returns, cutoff, features, config)
        clv, clv_status, clv_params = lifetime_value(transactions, cutoff, features.index, config)
        retention = cohort_retention(transactions, freq="M", observed_until=cutoff)

        segments = segment_summary(scores, net_spend(features))
        for segment in segments:
            members = (scores["segment"] == segment["name"]).to_numpy()
            probability = churn["probability"]
            segment["mean_churn_probability"] = (float(probability[members].mean())
                                                 if probability is not None and members.any() else None)
        clusters = [{**d, "centroid": [round(float(v), 6) for v in cluster_model.centroids[i]]}
                    for i, d in enumerate(cluster_model.descriptions)]
        profiles = _profiles(features, scores, cluster_ids, cluster_model.names(), churn, clv)
        result = CustomerIntelligence(cutoff, profiles, segments, clusters, cluster_model, clv_status,
                                      {"status": churn["status"], "latest": churn["latest"],
                                       "backtest": churn["backtest"]},
                                      clv_params, retention, run.info.run_id)
        _log(result, scores, cluster_model, churn)
    return result


def _churn(transactions, returns, cutoff, features, config: CustomerIntelligenceConfig) -> dict[str, Any]:
    window = config.churn.window_days
    out: dict[str, Any] = {"probability": None, "reasons": None, "latest": {}, "backtest": [],
                           "calibration": None, "status": "ok"}
    first = pd.to_datetime(transactions[schema.TIMESTAMP]).min()
    train_at = [c for c in training_cutoffs(cutoff, window, config.churn_training_cutoffs, config.spacing_days)
                if c > first]
    try:
        if not train_at:
            raise ChurnDataError(f"the data start {first} is less than {window} days before the cutoff")
        examples = churn_examples(transactions, train_at, returns, window, config.churn.feature_windows, cutoff)
        model = ChurnModel(config.churn).fit(examples)
    except ChurnDataError as exc:
        out["status"] = f"not trained: {exc}"
        return out
    out["probability"] = model.predict_proba(features)
    out["reasons"] = model.reasons(features, top=config.reasons)
    out["importance"] = model.feature_importance()

    evaluation_cutoffs = [cutoff - pd.Timedelta(days=window + config.spacing_days * j)
                          for j in range(config.backtest_cutoffs)]
    try:
        latest = evaluate_at(transactions, evaluation_cutoffs[0], returns, config.churn,
                             config.churn_training_cutoffs, config.spacing_days, cutoff)
        out["latest"] = {"cutoff": str(latest.cutoff), "n_train": latest.n_train, **latest.metrics}
        out["calibration"] = calibration_table(latest.labels, latest.probabilities)
    except ChurnDataError as exc:
        out["status"] = f"trained; not evaluated: {exc}"
        return out
    earlier = backtest(transactions, evaluation_cutoffs[1:], returns, config.churn,
                       config.churn_training_cutoffs, config.spacing_days, cutoff)
    out["backtest"] = [out["latest"]] + [{**row, "cutoff": str(row["cutoff"])}
                                         for row in earlier.to_dict("records")]
    return out


def _purchase_summary(transactions: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index) -> pd.DataFrame:
    """The purchase summary in ``customers`` order; a customer it lacks would be NaN in every model."""
    summary = summarize_purchases(transactions, cutoff)
    lost = customers.difference(summary.index)
    if len(lost):
        shown = ", ".join(map(str, lost[:5])) + (", ..." if len(lost) > 5 else "")
        raise ValueError(f"{len(lost)} of {len(customers)} customers have no purchase before {cutoff} "
                         f"(ids are compared as text): {shown}")
    return summary.reindex(customers)


def lifetime_value(transactions: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.Index,
                   config: CustomerIntelligenceConfig) -> tuple[dict, str, dict[str, dict[str, float]]]:
    """BG/NBD and Gamma-Gamma values per customer of ``customers`` (each with a purchase before ``cutoff``).

    Returns ``(values, status, params)``: ``values`` maps ``p_alive``, ``expected`` (purchases in
    ``horizon_days``) and ``clv`` to arrays in ``customers`` order, or to ``None`` where a fit it needs is
    degenerate; ``status`` is ``"ok"`` or ``"degenerate: <why>"``; ``params`` holds the fitted parameters.
    """
    summary = _purchase_summary(transactions, cutoff, customers)
    x, t_x, T, m = (summary[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    empty = {"p_alive": None, "expected": None, "clv": None}
    params: dict[str, dict[str, float]] = {}
    bgnbd = BetaGeoModel().fit(x, t_x, T)
    params["bgnbd"] = dict(bgnbd.params_)
    try:
        bgnbd.check()
    except DegenerateFitError as exc:
        return empty, f"degenerate: {exc}", params
    values = {"p_alive": bgnbd.conditional_probability_alive(x, t_x, T),
              "expected": bgnbd.conditional_expected_number_of_purchases_up_to_time(config.horizon_days, x, t_x, T),
              "clv": None}
    # Spend is learned from repeat customers who paid something: a free repeat order (a zero-price line
    # left in by the cleaning rules) has no place in a Gamma spend model, yet still gets a value below.
    learn = (x > 0) & (m > 0)
    needed = len(GammaGammaModel.PARAM_NAMES)  # its fit needs one customer per parameter at least
    if learn.sum() < needed:
        return values, (f"degenerate: Gamma-Gamma: {int(learn.sum())} repeat customers with positive spend to "
                        f"learn from, {needed} needed"), params
    spend = GammaGammaModel().fit(x[learn], m[learn])
    params["gamma_gamma"] = {**spend.params_, "repeat_customers_without_spend": float(((x > 0) & ~learn).sum())}
    try:
        values["clv"] = spend.check().customer_lifetime_value(bgnbd, x, t_x, T, m, time_months=config.clv_months,
                                                              discount_rate=config.discount_rate, freq="D")
    except DegenerateFitError as exc:
        return values, f"degenerate: {exc}", params
    return values, "ok", params


def _maybe(values, i: int) -> float | None:
    if values is None:
        return None
    value = float(values[i])
    return value if np.isfinite(value) else None


def _profiles(features, scores, cluster_ids, cluster_names, churn, clv) -> list[CustomerProfile]:
    out = []
    country = features["country"]
    spend = net_spend(features)
    for i, customer in enumerate(features.index):
        cluster = int(cluster_ids.iloc[i])
        out.append(CustomerProfile(
            customer_id=str(customer),
            segment=str(scores["segment"].iloc[i]),
            recency_score=int(scores["recency_score"].iloc[i]),
            frequency_score=int(scores["frequency_score"].iloc[i]),
            monetary_score=int(scores["monetary_score"].iloc[i]),
            cluster=cluster,
            cluster_name=cluster_names[cluster],
            churn_probability=_maybe(churn["probability"], i),
            churn_reasons=list(churn["reasons"][i]) if churn["reasons"] is not None else [],
            p_alive=_maybe(clv["p_alive"], i),
            expected_purchases=_maybe(clv["expected"], i),
            clv=_maybe(clv["clv"], i),
            recency_days=float(features["recency_days"].iloc[i]),
            frequency=int(features["frequency"].iloc[i]),
            monetary=float(spend.iloc[i]),
            country=None if pd.isna(country.iloc[i]) else str(country.iloc[i]),
        ))
    return out


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower().replace("'", "")).strip("_")


def _log(result: CustomerIntelligence, scores: pd.DataFrame, clusters: CustomerClusters, churn: dict) -> None:
    metrics: dict[str, float] = {"customers": len(result.profiles), "clusters.k": clusters.k,
                                 "clv.degenerate": float(result.clv_status != "ok")}
    for segment in result.segments:
        metrics[f"segment.{_slug(segment['name'])}.size"] = segment["size"]
        metrics[f"segment.{_slug(segment['name'])}.revenue_share"] = segment["revenue_share"]
    for cluster in result.clusters:
        metrics[f"cluster.{cluster['id']}.size"] = cluster["size"]
    if not clusters.selection.empty:
        chosen = clusters.selection.set_index("k").loc[clusters.k]
        metrics["clusters.silhouette"] = float(chosen["silhouette"])
        metrics["clusters.stability"] = float(chosen["stability"])
    metrics.update({f"churn.latest.{k}": v for k, v in result.churn_metrics["latest"].items() if k != "cutoff"})
    for j, row in enumerate(result.churn_metrics["backtest"]):
        metrics.update({f"churn.backtest.{j}.{k}": v for k, v in row.items() if k != "cutoff"})
    for model, params in result.clv_params.items():
        metrics.update({f"clv.{model}.{k}": v for k, v in params.items()})
    tracking.log_metrics(metrics)
    mlflow.set_tags({"clv_status": result.clv_status[:5000], "churn_status": result.churn_metrics["status"]})

    segments = pd.DataFrame(result.segments)
    mlflow.log_text(segments.to_csv(index=False), "segments/segments.csv")
    mlflow.log_text(pd.crosstab(scores["recency_score"], scores["fm_score"]).to_csv(), "segments/r_by_fm_counts.csv")
    mlflow.log_dict({"clusters": result.clusters, "selection": clusters.selection.to_dict("records")},
                    "clusters/clusters.json")
    mlflow.log_text(json.dumps(clusters.to_dict()), "clusters/model.json")
    mlflow.log_dict({"status": result.clv_status, "params": result.clv_params}, "clv/status.json")
    mlflow.log_dict(result.churn_metrics, "churn/metrics.json")
    if churn.get("importance") is not None:
        mlflow.log_text(churn["importance"].to_csv(header=["gain"]), "churn/feature_importance.csv")
    retention = result.cohort_retention.copy()
    retention.index = retention.index.astype(str)
    mlflow.log_text(retention.to_csv(), "cohorts/retention.csv")

    mlflow.log_figure(_retention_figure(result.cohort_retention), "plots/cohort_retention.png")
    mlflow.log_figure(_segments_figure(segments), "plots/segments.png")
    if churn.get("calibration") is not None:
        mlflow.log_figure(_calibration_figure(churn["calibration"], result.churn_metrics["latest"]),
                          "plots/churn_calibration.png")


def _retention_figure(retention: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    ages = [c for c in retention.columns if c != "cohort_size"]
    for cohort, row in retention.iterrows():
        axes.plot(ages, row[ages].to_numpy(dtype=float), marker=".", linewidth=1, label=str(cohort))
    axes.set(xlabel="months since first purchase", ylabel="share of cohort buying", title="Cohort retention",
             ylim=(0, 1.02))
    if len(retention) <= 16:
        axes.legend(fontsize=6, ncols=2)
    return figure


def _segments_figure(segments: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(9, 5))
    axes = figure.subplots()
    position = np.arange(len(segments))
    axes.barh(position - 0.2, segments["share"], height=0.4, label="share of customers")
    axes.barh(position + 0.2, segments["revenue_share"], height=0.4, label="share of revenue")
    axes.set_yticks(position, segments["name"])
    axes.invert_yaxis()
    axes.set(xlabel="share", title="RFM segments: size and revenue")
    axes.legend()
    figure.tight_layout()
    return figure


def _calibration_figure(table: pd.DataFrame, metrics: dict) -> Figure:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.plot(table["predicted"], table["observed"], marker="o")
    title = f"Churn calibration at {metrics.get('cutoff', '?')[:10]} (Brier {metrics.get('brier', float('nan')):.3f})"
    axes.set(xlabel="predicted churn probability", ylabel="observed churn rate", xlim=(0, 1), ylim=(0, 1),
             title=title)
    return figure
