"""Churn: who will not buy again soon, how sure we are, and why; plus cohort retention.

Definition. At a ``cutoff`` the population is every customer with a purchase before it; a customer has
*churned* when they make no purchase in ``[cutoff, cutoff + window_days)``. Features are
:func:`~recsys.customers.features.customer_features` as of the cutoff, so a label never leaks into its
features.

Training. A model learns from one or more *training cutoffs* whose label windows have fully passed.
The examples of several cutoffs are stacked (the same customer may appear once per cutoff); this
averages over the season each window falls in and gives more examples. The gradient-boosted trees
(LightGBM) output log-odds; probabilities come from a calibrator (Platt's logistic by default, which
scored a lower Brier than isotonic regression on the early Online Retail fold; isotonic on request)
fitted on *out-of-fold* scores: the training examples are split into folds by customer, each fold is
scored by trees that never saw that customer, and the calibrator maps those held-out scores to the
labels. The served trees are then refitted on all examples. Nothing after the
last training label window is read.

Reasons. LightGBM's ``pred_contrib`` gives each feature's SHAP contribution to a customer's log-odds;
the reasons are the (up to) three features pushing most towards churn (largest positive contribution),
with the customer's value of each.

Backtest. :func:`backtest` replays the procedure at several cutoffs: at each one it trains on the
cutoffs whose label windows end by it, scores the population at it and measures against what happened
in the following window (ROC-AUC, PR-AUC, Brier score, base rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from recsys.customers.features import customer_features, require_customer_ids
from recsys.data import schema

# Features the model leaves out: text, and columns that are NaN unless the data has categories (kept
# out so a model's inputs do not depend on the shop's catalogue).
_EXCLUDED = ("country", "n_categories", "top_category_share")

# Chosen by customer-grouped cross-validation on Online Retail's June 2011 fold (the benchmark's early
# window): shallow trees and slow learning beat deeper ones on a few thousand customers.
DEFAULT_LGBM_PARAMS: dict = {
    "objective": "binary",
    "learning_rate": 0.02,
    "num_leaves": 4,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 5.0,
    "verbose": -1,
    "num_threads": 1,
    "force_col_wise": True,
}


class ChurnDataError(ValueError):
    """The data cannot support the requested churn labels (e.g. the label window has not passed)."""


def churn_labels(transactions: pd.DataFrame, cutoff: str | pd.Timestamp, window_days: int = 90,
                 observed_until: str | pd.Timestamp | None = None) -> pd.Series:
    """1 for each customer with a purchase before ``cutoff`` and none in ``[cutoff, cutoff + window_days)``.

    Indexed by customer id, sorted. ``observed_until`` is when the data stop (default: midnight after the
    last purchase); a window ending after it raises :class:`ChurnDataError`, since the label would count
    customers as churned for lack of data.
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be positive, got {window_days}")
    cutoff = pd.Timestamp(cutoff)
    end = cutoff + pd.Timedelta(days=window_days)
    timestamps = pd.to_datetime(transactions[schema.TIMESTAMP])
    if observed_until is None:
        last = timestamps.max()
        # The last day with data counts as observed: a window ending at midnight after it has passed.
        observed_until = last.normalize() + pd.Timedelta(days=1) if pd.notna(last) else None
    if observed_until is None or end > pd.Timestamp(observed_until):
        raise ChurnDataError(f"the label window [{cutoff}, {end}) ends after the data ({observed_until})")
    customers = transactions[schema.CUSTOMER_ID].astype("string")
    require_customer_ids(customers[(timestamps < end).to_numpy()])
    population = pd.Index(customers[(timestamps < cutoff).to_numpy()].unique()).sort_values()
    returned = set(customers[((timestamps >= cutoff) & (timestamps < end)).to_numpy()].unique())
    churned = np.fromiter((c not in returned for c in population), dtype=np.int64, count=len(population))
    return pd.Series(churned, index=pd.Index(population, name=schema.CUSTOMER_ID), name="churned")


@dataclass(frozen=True)
class ChurnExamples:
    """Stacked training or scoring rows: ``features`` and ``labels`` share one row order;
    ``customers`` and ``cutoffs`` say whose and as of when each row is."""

    features: pd.DataFrame
    labels: np.ndarray
    customers: np.ndarray
    cutoffs: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def churn_examples(
    transactions: pd.DataFrame,
    cutoffs: Sequence[str | pd.Timestamp],
    returns: pd.DataFrame | None = None,
    window_days: int = 90,
    feature_windows: Sequence[int] = (30, 90, 180),
    observed_until: str | pd.Timestamp | None = None,
) -> ChurnExamples:
    """Features as of each cutoff with the churn label of the window after it, stacked
    (``observed_until`` as in :func:`churn_labels`)."""
    if not len(cutoffs):
        raise ValueError("need at least one cutoff")
    blocks, labels, customers, stamps = [], [], [], []
    for cutoff in cutoffs:
        cutoff = pd.Timestamp(cutoff)
        y = churn_labels(transactions, cutoff, window_days, observed_until)
        x = customer_features(transactions, cutoff, returns, feature_windows).reindex(y.index)
        blocks.append(x.reset_index(drop=True))
        labels.append(y.to_numpy())
        customers.append(y.index.to_numpy(dtype=object))
        stamps.append(np.full(len(y), cutoff.to_datetime64()))
    return ChurnExamples(pd.concat(blocks, ignore_index=True), np.concatenate(labels),
                         np.concatenate(customers), np.concatenate(stamps))


def model_columns(features: pd.DataFrame) -> list[str]:
    """The numeric feature columns a churn model uses."""
    return [c for c in features.columns if c not in _EXCLUDED and pd.api.types.is_numeric_dtype(features[c])]


@dataclass(frozen=True)
class ChurnConfig:
    """How the churn model is built.

    Attributes:
        window_days: the label window after each cutoff.
        feature_windows: day windows of the trend features.
        features: the feature columns to use; ``None`` takes every numeric column of the features.
        lgbm_params: LightGBM parameters; ``num_boost_round`` boosting rounds.
        calibration: ``"isotonic"`` or ``"sigmoid"`` (Platt).
        n_folds: folds (by customer) of the out-of-fold scores the calibrator is fitted on.
        seed: seeds the folds and LightGBM's sampling.
    """

    window_days: int = 90
    feature_windows: tuple[int, ...] = (30, 90, 180)
    features: tuple[str, ...] | None = None
    lgbm_params: dict = field(default_factory=lambda: dict(DEFAULT_LGBM_PARAMS))
    num_boost_round: int = 400
    calibration: str = "sigmoid"
    n_folds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.calibration not in ("isotonic", "sigmoid"):
            raise ValueError(f"calibration must be 'isotonic' or 'sigmoid', got {self.calibration!r}")
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {self.n_folds}")
        if int(self.lgbm_params.get("num_threads", 1)) > 2 or self.lgbm_params.get("num_threads", 1) <= 0:
            raise ValueError("num_threads must be 1 or 2: the job shares its machine")


class ChurnModel:
    """LightGBM churn classifier with a calibrator fitted on out-of-fold scores (see the module docstring)."""

    def __init__(self, config: ChurnConfig | None = None):
        self.config = config or ChurnConfig()
        self.columns_: list[str] | None = None
        self.booster_: lgb.Booster | None = None
        self.calibrator_: IsotonicRegression | LogisticRegression | None = None
        self.oof_scores_: np.ndarray | None = None

    def fit(self, examples: ChurnExamples) -> ChurnModel:
        y = np.asarray(examples.labels, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise ChurnDataError(f"training labels are all {y[0] if len(y) else 'missing'}: nothing to learn")
        n_customers = len(np.unique(np.asarray(examples.customers, dtype=str)))
        if n_customers < 2 * self.config.n_folds:
            raise ChurnDataError(f"{n_customers} customers are too few for {self.config.n_folds} calibration folds")
        self.columns_ = list(self.config.features) if self.config.features else model_columns(examples.features)
        x = examples.features[self.columns_].to_numpy(dtype=np.float64)
        fold = _customer_folds(examples.customers, self.config.n_folds, self.config.seed)
        oof = np.empty(len(y))
        for k in range(self.config.n_folds):
            held = fold == k
            oof[held] = self._train(x[~held], y[~held]).predict(x[held], raw_score=True)
        self.oof_scores_ = oof
        self.calibrator_ = _fit_calibrator(self.config.calibration, oof, y)
        self.booster_ = self._train(x, y)
        return self

    def _train(self, x: np.ndarray, y: np.ndarray) -> lgb.Booster:
        params = {**self.config.lgbm_params, "seed": self.config.seed, "deterministic": True}
        data = lgb.Dataset(x, label=y, feature_name=self.columns_, free_raw_data=True)
        return lgb.train(params, data, num_boost_round=self.config.num_boost_round)

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        if self.booster_ is None:
            raise RuntimeError("ChurnModel is not fitted")
        missing = [c for c in self.columns_ if c not in features.columns]
        if missing:
            raise ValueError(f"features lack columns {missing}")
        return features[self.columns_].to_numpy(dtype=np.float64)

    def raw_scores(self, features: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of churn."""
        return self.booster_.predict(self._matrix(features), raw_score=True) if len(features) else np.empty(0)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of churn for each row of ``features``."""
        return _apply_calibrator(self.calibrator_, self.raw_scores(features))

    def reasons(self, features: pd.DataFrame, top: int = 3) -> list[list[dict]]:
        """Per row, up to ``top`` ``{"feature", "value", "contribution"}`` pushing most towards churn.

        ``contribution`` is the SHAP value in log-odds; ``value`` is the customer's feature value
        (``None`` when undefined). Features pulling towards staying are not reasons.
        """
        x = self._matrix(features)
        if not len(x):
            return []
        contrib = self.booster_.predict(x, pred_contrib=True)[:, :-1]  # last column is the bias
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
        out = []
        for row, picks in enumerate(order):
            out.append([
                {"feature": self.columns_[j],
                 "value": None if np.isnan(x[row, j]) else float(x[row, j]),
                 "contribution": float(contrib[row, j])}
                for j in picks if contrib[row, j] > 0
            ])
        return out

    def feature_importance(self) -> pd.Series:
        """Total gain of each feature, largest first."""
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.columns_).sort_values(ascending=False)


def _customer_folds(customers: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    unique, inverse = np.unique(np.asarray(customers, dtype=str), return_inverse=True)
    assignment = np.random.default_rng(seed).permutation(len(unique)) % n_folds
    return assignment[inverse]


def _fit_calibrator(method: str, scores: np.ndarray, y: np.ndarray):
    if method == "isotonic":
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    return LogisticRegression(C=1e6).fit(scores.reshape(-1, 1), y)


def _apply_calibrator(calibrator, scores: np.ndarray) -> np.ndarray:
    if not len(scores):
        return np.empty(0)
    if isinstance(calibrator, IsotonicRegression):
        return calibrator.predict(scores)
    return calibrator.predict_proba(scores.reshape(-1, 1))[:, 1]


def classification_metrics(labels, probabilities) -> dict[str, float]:
    """``roc_auc``, ``pr_auc`` (average precision, churn = positive), ``brier``, ``base_rate`` and ``n``.

    The ranking metrics are NaN when only one class is present: there is nothing to rank.
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "base_rate": float(y.mean()),
        "n": float(len(y)),
    }


def calibration_table(labels, probabilities, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn rate in equal-count bins of the prediction (a reliability curve)."""
    frame = pd.DataFrame({"p": np.asarray(probabilities, dtype=float), "y": np.asarray(labels, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(n_bins, len(frame)), labels=False)
    return frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))


def training_cutoffs(cutoff: str | pd.Timestamp, window_days: int, n_cutoffs: int = 1,
                     spacing_days: int = 30) -> list[pd.Timestamp]:
    """Training cutoffs whose label windows end by ``cutoff``: the latest is ``cutoff - window_days``,
    earlier ones ``spacing_days`` apart, oldest first."""
    latest = pd.Timestamp(cutoff) - pd.Timedelta(days=window_days)
    return [latest - pd.Timedelta(days=spacing_days * k) for k in reversed(range(n_cutoffs))]


@dataclass(frozen=True)
class ChurnEvaluation:
    """One out-of-time evaluation: the model trained on labels ending by ``cutoff``, scored at it."""

    cutoff: pd.Timestamp
    training_cutoffs: list[pd.Timestamp]
    n_train: int
    metrics: dict[str, float]
    labels: np.ndarray
    probabilities: np.ndarray


def evaluate_at(
    transactions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    returns: pd.DataFrame | None = None,
    config: ChurnConfig | None = None,
    n_training_cutoffs: int = 1,
    spacing_days: int = 30,
    observed_until: str | pd.Timestamp | None = None,
) -> ChurnEvaluation:
    """Train on :func:`training_cutoffs` of ``cutoff`` (labels ending by it), score the population at
    ``cutoff`` and compare with what happened in the window after it."""
    config = config or ChurnConfig()
    cutoff = pd.Timestamp(cutoff)
    first = pd.to_datetime(transactions[schema.TIMESTAMP]).min()
    train_at = [c for c in training_cutoffs(cutoff, config.window_days, n_training_cutoffs, spacing_days)
                if c > first]
    if not train_at:
        raise ChurnDataError(f"no training cutoff before {cutoff} has data before it (data start {first})")
    train = churn_examples(transactions, train_at, returns, config.window_days, config.feature_windows,
                           observed_until)
    test = churn_examples(transactions, [cutoff], returns, config.window_days, config.feature_windows,
                          observed_until)
    probabilities = ChurnModel(config).fit(train).predict_proba(test.features)
    return ChurnEvaluation(cutoff, train_at, len(train), classification_metrics(test.labels, probabilities),
                           test.labels, probabilities)


def backtest(
    transactions: pd.DataFrame,
    cutoffs: Sequence[str | pd.Timestamp],
    returns: pd.DataFrame | None = None,
    config: ChurnConfig | None = None,
    n_training_cutoffs: int = 1,
    spacing_days: int = 30,
    observed_until: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Rolling-origin evaluation: one row per cutoff (``cutoff``, ``n_train`` and
    :func:`classification_metrics`), each from :func:`evaluate_at`. Cutoffs the data cannot support
    (no history to train on, a label window past the data, a single class) are skipped."""
    rows = []
    for cutoff in cutoffs:
        try:
            result = evaluate_at(transactions, cutoff, returns, config, n_training_cutoffs, spacing_days,
                                 observed_until)
        except ChurnDataError:
            continue
        rows.append({"cutoff": result.cutoff, "n_train": result.n_train, **result.metrics})
    return pd.DataFrame(rows)


def cohort_retention(transactions: pd.DataFrame, freq: str = "M",
                     observed_until: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Share of each acquisition cohort that bought in each later period.

    A customer's cohort is the period (``freq``: ``"M"`` months, ``"W"`` weeks, ``"Q"`` quarters) of
    their first purchase. Row = cohort, column = periods since acquisition (0, 1, ...), value = the
    share of the cohort with at least one purchase in that period; column 0 is 1 by construction.
    ``observed_until`` is when the data stop (default: midnight after the last purchase); a later period
    is observed only when it ends by then, and is NaN otherwise, not 0: a month the data cover only in
    part would show a false drop. A ``cohort_size`` column gives the cohort's size.
    """
    if freq not in ("M", "W", "Q"):
        raise ValueError(f"freq must be 'M', 'W' or 'Q', got {freq!r}")
    require_customer_ids(transactions[schema.CUSTOMER_ID])
    timestamps = pd.to_datetime(transactions[schema.TIMESTAMP])
    period = timestamps.dt.to_period(freq)
    frame = pd.DataFrame({"customer": transactions[schema.CUSTOMER_ID].astype("string").to_numpy(dtype=object),
                          "period": period.to_numpy()}).drop_duplicates()
    if frame.empty:
        return pd.DataFrame(columns=["cohort_size"])
    frame["cohort"] = frame.groupby("customer")["period"].transform("min")
    ordinal = frame["period"].map(lambda p: p.ordinal).to_numpy()
    cohort_ordinal = frame["cohort"].map(lambda p: p.ordinal).to_numpy()
    frame["age"] = ordinal - cohort_ordinal
    if observed_until is None:
        observed_until = timestamps.max().normalize() + pd.Timedelta(days=1)
    # The period holding observed_until has not ended (or has just begun): the one before is the last whole one.
    last_whole = pd.Timestamp(observed_until).to_period(freq).ordinal - 1
    # Up to the oldest cohort's last whole period, so that an observed period nobody bought in shows its 0.
    oldest_age = max(int(frame["age"].max()), int(last_whole - cohort_ordinal.min()))
    active = frame.groupby(["cohort", "age"]).size().unstack("age").reindex(columns=range(oldest_age + 1))
    sizes = active[0]
    retention = active.div(sizes, axis=0)
    ages = np.arange(retention.shape[1])
    cohorts = np.array([c.ordinal for c in retention.index])
    # Column 0 is 1 by definition, however little of the acquisition period the data cover.
    observed = (cohorts[:, None] + ages[None, :] <= last_whole) | (ages[None, :] == 0)
    retention = retention.where(observed, np.nan).where(~observed | retention.notna(), 0.0)
    retention.columns = [int(a) for a in retention.columns]
    retention.index.name = "cohort"
    retention.insert(0, "cohort_size", sizes.astype(np.int64))
    return retention
