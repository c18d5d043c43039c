"""Lookalike audiences on Online Retail: do the customers most like an item's buyers go on to buy it?

    .venv/bin/python benchmarks/lookalike_online_retail.py [--data ../shared/data/online_retail.parquet]
        [--items 30] [--size 100]

On the test fold of the temporal protocol (train before 2011-09-09, then to the end), for each of the
``--items`` items bought by the most customers before the cut: the seeds are the customers who bought it
before the cut, and an audience of ``--size`` is drawn from the other customers of the training data in
three ways:

- ``lookalike``: :func:`recsys.customers.lookalike.lookalikes` over cosine customer-kNN (50 neighbours),
  as ``recsys audiences lookalike`` draws it;
- ``most_active``: the customers with the most orders (what a marketer without a model would send);
- ``everyone``: the rate over every non-seed customer (the base rate).

The figure is the share of the audience that buys the item for the first time after the cut, averaged
over the items, and the lookalike audience's lift over each baseline. Ends with one ``RESULT`` line.
"""

from __future__ import annotations

from recsys.numerics import pin_blas_kernel

pin_blas_kernel()  # before numpy loads OpenBLAS, as the recsys command does

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from recsys.customers.lookalike import lookalikes  # noqa: E402
from recsys.data import clean_transactions, load_online_retail  # noqa: E402
from recsys.evaluation.protocol import ONLINE_RETAIL  # noqa: E402
from recsys.models.user_knn import UserKNNRecommender  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "online_retail.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()

    transactions = clean_transactions(load_online_retail(args.data)).transactions
    fold = ONLINE_RETAIL.folds(transactions)["test"]
    train = fold.train
    after = transactions[transactions["timestamp"] >= fold.cutoff]
    customer_rows = train.customers.to_index(after["customer_id"].astype(str))
    item_rows = train.items.to_index(after["item_id"].astype(str))
    known = (customer_rows >= 0) & (item_rows >= 0)
    bought_after = {(c, i) for c, i in zip(customer_rows[known], item_rows[known], strict=True)}

    start = time.perf_counter()
    similarity = UserKNNRecommender(neighbours=50, num_threads=2).fit(train).customer_similarity
    fit_s = time.perf_counter() - start
    bought = train.matrix.tocsc()
    buyers_per_item = np.diff(bought.indptr)
    orders = train.transactions.groupby("customer_idx")["order_id"].nunique().reindex(
        range(train.n_customers), fill_value=0).to_numpy()
    by_activity = np.argsort(-orders, kind="stable")

    rates = {"lookalike": [], "most_active": [], "everyone": []}
    for item in np.argsort(-buyers_per_item, kind="stable")[:args.items]:
        seeds = bought.indices[bought.indptr[item]:bought.indptr[item + 1]]
        is_seed = np.zeros(train.n_customers, dtype=bool)
        is_seed[seeds] = True

        def conversion(rows: np.ndarray, item: int = item) -> float:
            return float(np.mean([(int(c), int(item)) in bought_after for c in rows])) if len(rows) else 0.0

        rates["lookalike"].append(conversion(lookalikes(similarity, seeds, args.size).rows))
        rates["most_active"].append(conversion(by_activity[~is_seed[by_activity]][:args.size]))
        rates["everyone"].append(conversion(np.flatnonzero(~is_seed)))
    means = {name: float(np.mean(values)) for name, values in rates.items()}
    print(f"{args.items} items, audiences of {args.size}; customer-kNN fit {fit_s:.1f} s")
    for name, value in means.items():
        print(f"{name:<12} first purchase of the item after the cut: {value:.4f}")
    lift_active = means["lookalike"] / means["most_active"]
    lift_base = means["lookalike"] / means["everyone"]
    print(f"RESULT lookalike_rate={means['lookalike']:.4f} most_active_rate={means['most_active']:.4f} "
          f"base_rate={means['everyone']:.4f} lift_over_most_active={lift_active:.2f} lift_over_base={lift_base:.2f}")


if __name__ == "__main__":
    main()
