"""Churn on Online Retail: our model against four peers, all computed in this run on one protocol.

    .venv/bin/python benchmarks/churn_online_retail.py [--data ../shared/data/online_retail.parquet]

Protocol. Rows with a null CustomerID, invoices starting with "C", Quantity <= 0 or UnitPrice <= 0 are
dropped (397,884 rows; no stock codes are removed). Test: cutoff 2011-09-09; the population is every
customer with a purchase before it (3,362); churned = no purchase in [2011-09-09, 2011-12-09), 91 days
(base rate 0.429).

Nothing after 2011-09-09 is used for training or for any choice. Every choice (features,
hyperparameters, calibration method) was made on the early window: cutoff 2011-06-09, labels
[2011-06-09, 2011-09-08), by customer-grouped cross-validation. The final model stacks the monthly
cutoffs 2011-03-09 ... 2011-06-09, whose label windows all end by 2011-09-08, calibrates on their
out-of-fold scores, and scores the test cutoff once. The supervised peers are trained on the early
window's labels only:

* ``lr``: logistic regression on standardised log recency, log frequency and log monetary;
* ``lgbm_rfm``: LightGBM on the same three features, its rounds and leaves picked by cross-validated
  ROC-AUC on the early window (uncalibrated: the binary objective's own probabilities);
* ``bgnbd``: BG/NBD fitted on daily summaries before 2011-09-09 (no labels needed), scored as
  P(no purchase in the next 91 days), served here even though the fit is flagged degenerate;
* ``recency``: days since the last purchase (a ranking only, so no Brier score).

Ends with one ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from recsys.customers.churn import ChurnConfig, ChurnModel, churn_examples, classification_metrics
from recsys.data import CleaningRules, clean_transactions, load_online_retail
from recsys.models.customers import BetaGeoModel, summarize_purchases

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "online_retail.parquet"
TEST_CUTOFF = pd.Timestamp("2011-09-09")
EARLY_CUTOFF = pd.Timestamp("2011-06-09")
TRAINING_CUTOFFS = ("2011-03-09", "2011-04-09", "2011-05-09", "2011-06-09")
WINDOW_DAYS = 91
RFM = ("recency_days", "frequency", "monetary_total")


def rfm_matrix(features: pd.DataFrame) -> np.ndarray:
    return np.log1p(features[list(RFM)].to_numpy(dtype=np.float64))


def tuned_lgbm_rfm(x: np.ndarray, y: np.ndarray) -> lgb.Booster:
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(x, y))
    best = None
    for leaves in (2, 4, 8, 16):
        for rounds in (50, 100, 200, 400):
            params = {"objective": "binary", "learning_rate": 0.03, "num_leaves": leaves,
                      "min_child_samples": 50, "verbose": -1, "num_threads": 1, "seed": 0}
            scores = np.empty(len(y))
            for fit, held in folds:
                booster = lgb.train(params, lgb.Dataset(x[fit], label=y[fit]), num_boost_round=rounds)
                scores[held] = booster.predict(x[held])
            auc = roc_auc_score(y, scores)
            if best is None or auc > best[0]:
                best = (auc, params, rounds)
    _, params, rounds = best
    print(f"lgbm_rfm picked num_leaves={params['num_leaves']} rounds={rounds} (early-window CV AUC {best[0]:.4f})")
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    started = time.perf_counter()
    cleaned = clean_transactions(load_online_retail(args.data), CleaningRules(non_product_items=frozenset()))
    transactions, returns = cleaned.transactions, cleaned.returns
    print(cleaned.report)

    config = ChurnConfig(window_days=WINDOW_DAYS)
    train = churn_examples(transactions, TRAINING_CUTOFFS, returns, WINDOW_DAYS, config.feature_windows)
    early = churn_examples(transactions, [EARLY_CUTOFF], returns, WINDOW_DAYS, config.feature_windows)
    test = churn_examples(transactions, [TEST_CUTOFF], returns, WINDOW_DAYS, config.feature_windows)
    model = ChurnModel(config).fit(train)
    results = {"churn_lgbm": classification_metrics(test.labels, model.predict_proba(test.features))}

    lr = make_pipeline(StandardScaler(), LogisticRegression()).fit(rfm_matrix(early.features), early.labels)
    results["lr_rfm"] = classification_metrics(test.labels, lr.predict_proba(rfm_matrix(test.features))[:, 1])
    booster = tuned_lgbm_rfm(rfm_matrix(early.features), early.labels)
    results["lgbm_rfm"] = classification_metrics(test.labels, booster.predict(rfm_matrix(test.features)))

    summary = summarize_purchases(transactions, TEST_CUTOFF).reindex(test.customers)
    bgnbd = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
    p_none = bgnbd.probability_of_no_purchase_within(WINDOW_DAYS, summary["frequency"], summary["recency"],
                                                     summary["T"])
    results["bgnbd"] = classification_metrics(test.labels, p_none)
    recency = test.features["recency_days"].to_numpy()
    results["recency"] = {**classification_metrics(test.labels, recency / recency.max()), "brier": float("nan")}
    bg_state = "degenerate: " + "; ".join(bgnbd.fit_diagnostics_.reasons) if bgnbd.fit_diagnostics_.degenerate \
        else "ok"
    print(f"BG/NBD params {({k: round(v, 4) for k, v in bgnbd.params_.items()})} ({bg_state})")

    print(f"\ntrain rows {len(train):,} from cutoffs {', '.join(TRAINING_CUTOFFS)}; test cutoff "
          f"{TEST_CUTOFF.date()}, window {WINDOW_DAYS} days")
    print(f"{'model':<12} {'ROC-AUC':>8} {'PR-AUC':>8} {'Brier':>8} {'base':>7} {'n':>6}")
    for name, m in results.items():
        print(f"{name:<12} {m['roc_auc']:8.4f} {m['pr_auc']:8.4f} {m['brier']:8.4f} {m['base_rate']:7.3f} "
              f"{int(m['n']):6d}")
    print("top features by gain:", ", ".join(model.feature_importance().index[:8]))
    print(f"elapsed {time.perf_counter() - started:.1f}s")
    ours = results["churn_lgbm"]
    print(f"RESULT roc_auc={ours['roc_auc']:.4f} pr_auc={ours['pr_auc']:.4f} brier={ours['brier']:.4f} "
          f"base_rate={ours['base_rate']:.3f} n={int(ours['n'])} lr_roc_auc={results['lr_rfm']['roc_auc']:.4f} "
          f"lgbm_rfm_roc_auc={results['lgbm_rfm']['roc_auc']:.4f} bgnbd_roc_auc={results['bgnbd']['roc_auc']:.4f} "
          f"recency_roc_auc={results['recency']['roc_auc']:.4f}")


if __name__ == "__main__":
    main()
