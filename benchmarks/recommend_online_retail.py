"""Online Retail recommendations on the temporal protocol: open-source baselines against the ranker.

    .venv/bin/python benchmarks/recommend_online_retail.py [--data ../shared/data/online_retail.parquet]
        [--ranker-params '{"label_days": 30}'] [--skip-peers] [--check-repeat]

Cleans with the default rules, builds the validation fold (train < 2011-06-09, evaluate up to
2011-09-09) and the test fold (train < 2011-09-09, evaluate to the end), fits each model on each
fold's training data, prints settings A (repeats allowed) and B (new items only) for both folds,
the ranker's fit time on each fold, and ends with one ``RESULT`` line per setting (test fold): the
ranker for A, and for B whichever model scored the best validation nDCG@10 in B. Configurations are
fixed here and in the models' defaults, chosen on the validation fold only. ``--check-repeat`` fits
the ranker on the test fold a second time and fails unless every figure is identical.
OpenBLAS runs the kernels the ``recsys`` command pins (:mod:`recsys.numerics`), so the figures
repeat on other CPUs; the ``numerics`` line names the CPU and kernels they came from.
"""

from __future__ import annotations

from recsys.numerics import numeric_environment, pin_blas_kernel

pin_blas_kernel()  # before numpy loads OpenBLAS, as the recsys command does

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from recsys.data import clean_transactions, load_online_retail  # noqa: E402
from recsys.evaluation.protocol import ONLINE_RETAIL, Fold, evaluate_settings  # noqa: E402
from recsys.models.base import top_k  # noqa: E402
from recsys.models.registry import create_model  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "online_retail.parquet"
RESULT_METRICS = ("ndcg@10", "recall@10", "recall@20", "precision@10", "map@10", "coverage@10")
COLUMNS = ("ndcg@10", "recall@10", "recall@20", "precision@10", "map@10", "coverage@10", "n_customers")
PEERS: dict[str, tuple[str, dict]] = {
    "popular": ("popularity", {"by": "orders"}),
    "ease (weighted, A)": ("ease", {"l2": 100.0, "binary": False}),
    "ease (binary, B)": ("ease", {"l2": 500.0, "binary": True}),
    "ease (60-day recency)": ("ease", {"l2": 30.0, "binary": False, "recency_half_life_days": 60.0}),
    "item_knn bm25": ("item_knn", {"similarity": "bm25", "num_threads": 2}),
    "user_knn cosine": ("user_knn", {"neighbours": 50, "num_threads": 2}),
    "als": ("als", {"num_threads": 2}),
}


def repeat_buy_with_popular_fill(fold: Fold):
    """Repeat-buy first, the rest of the list from all-time best-sellers (by orders)."""
    repeat = create_model("repeat_buy").fit(fold.train)
    popular = create_model("popularity", by="orders").fit(fold.train)

    def recommend(customers: np.ndarray, k: int, exclude_seen: bool) -> np.ndarray:
        own = repeat.score(customers)
        fill = popular.score(customers)
        finite = np.isfinite(own)
        floor = own[finite].min() if finite.any() else 0.0
        # every bought item (shifted to >= 1) above every best-seller (scaled into [0, 1))
        scores = np.where(finite, own - floor + 1.0, np.maximum(fill, 0.0) / (fill.max() + 1.0))
        if exclude_seen:
            scores = np.where(fold.train.matrix[customers].toarray() > 0, -np.inf, scores)
        return top_k(scores.astype(np.float32), k)[0]

    return recommend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ranker-params", default="{}", help="JSON parameters of the 'ranker' model")
    parser.add_argument("--skip-peers", action="store_true", help="evaluate the ranker only")
    parser.add_argument("--check-repeat", action="store_true",
                        help="refit the ranker on the test fold and require identical figures")
    args = parser.parse_args()
    ranker_params = json.loads(args.ranker_params)

    transactions = clean_transactions(load_online_retail(args.data)).transactions
    folds = ONLINE_RETAIL.folds(transactions)
    print(f"{len(transactions)} rows, {transactions['customer_id'].nunique()} customers, "
          f"{transactions['item_id'].nunique()} items")
    print("numerics: " + ", ".join(f"{k.removeprefix('numerics.')} {v}" for k, v in numeric_environment().items()))
    results: dict[tuple[str, str], dict] = {}
    fit_seconds = {}
    for fold_name, fold in folds.items():
        if not args.skip_peers:
            results[(fold_name, "repeat_buy + popular fill")] = evaluate_settings(
                repeat_buy_with_popular_fill(fold), fold)
            for label, (name, params) in PEERS.items():
                results[(fold_name, label)] = evaluate_settings(create_model(name, **params).fit(fold.train), fold)
        start = time.perf_counter()
        ranker = create_model("ranker", **ranker_params).fit(fold.train)
        fit_seconds[fold_name] = time.perf_counter() - start
        results[(fold_name, "ranker")] = evaluate_settings(ranker, fold)

    for setting in ("A", "B"):
        print(f"\nsetting {setting}")
        print(f"{'fold':<11}{'model':<28}" + "".join(f"{c:>13}" for c in COLUMNS))
        for (fold_name, label), by_setting in results.items():
            row = by_setting[setting]
            print(f"{fold_name:<11}{label:<28}" + "".join(
                f"{row[c]:>13d}" if c == "n_customers" else f"{row[c]:>13.4f}" for c in COLUMNS))
    print(f"\nranker params: {json.dumps(ranker.get_params())}")
    print("ranker fit seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in fit_seconds.items()))
    if args.check_repeat:
        again = evaluate_settings(create_model("ranker", **ranker_params).fit(folds["test"].train), folds["test"])
        if again != results[("test", "ranker")]:
            raise SystemExit(f"a second ranker fit scored differently: {again} vs {results[('test', 'ranker')]}")
        print("second ranker fit on the test fold: identical figures")
    for setting in ("A", "B"):
        label = "ranker" if setting == "A" else choose_on_validation(results, setting)
        row = results[("test", label)][setting]
        print(f"RESULT setting={setting} model={label.replace(' ', '_')} " + " ".join(
            f"{metric}={row[metric]:.4f}" for metric in RESULT_METRICS))


def choose_on_validation(results: dict[tuple[str, str], dict], setting: str) -> str:
    """The model with the best validation nDCG@10 under ``setting``."""
    scored = {label: by_setting[setting]["ndcg@10"] for (fold, label), by_setting in results.items()
              if fold == "validation"}
    return max(scored, key=scored.get)


if __name__ == "__main__":
    main()
