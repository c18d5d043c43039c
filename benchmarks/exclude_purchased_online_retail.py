"""What an "exclude already bought" request serves, on the Online Retail test fold, for models that do not
rank new items apart: the published records against the list alone and against the model itself.

    .venv/bin/python benchmarks/exclude_purchased_online_retail.py [--data ../shared/data/online_retail.parquet]
        [--top-n 50]

For each model, publishing scores the customers of the test fold's training data as a snapshot would
hold them (``training.publish.score_bundle``, records encoded and decoded as the store holds them), and
each evaluated customer's answer is walked as serving walks it: the record's first-purchase order
without the bought items, then the popular list. Three figures per model, setting B (new items only):

- ``served``: the published records (the list, then the new items the model ranks next);
- ``list_only``: the list alone without the bought items, then popular items (the baseline: what a
  record holding only the list serves);
- ``model``: ``recommend(..., exclude_seen=True)`` of the model itself, what ``served`` should equal.

Ends with one ``RESULT`` line per model.
"""

from __future__ import annotations

from recsys.numerics import pin_blas_kernel

pin_blas_kernel()  # before numpy loads OpenBLAS, as the recsys command does

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from recsys.data import clean_transactions, load_online_retail  # noqa: E402
from recsys.evaluation.protocol import ONLINE_RETAIL, evaluate  # noqa: E402
from recsys.models.registry import create_model  # noqa: E402
from recsys.records import decode_customer_record, encode_customer_records  # noqa: E402
from training.bundle import ModelBundle, build_catalog, history_of  # noqa: E402
from training.publish import PublishOptions, score_bundle  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "online_retail.parquet"
MODELS = {
    "ease_weighted": ("ease", {"l2": 100.0, "binary": False}),
    "ease_binary": ("ease", {"l2": 500.0, "binary": True}),
    "item_knn_bm25": ("item_knn", {"similarity": "bm25", "num_threads": 2}),
    "als": ("als", {"num_threads": 2}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--top-n", type=int, default=50, help="recommendations stored per customer")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data} is missing: this benchmark needs the Online Retail data of ../shared/data")
    transactions = clean_transactions(load_online_retail(args.data)).transactions
    fold = ONLINE_RETAIL.test_fold(transactions)
    train = fold.train
    history = history_of(train)
    popular = create_model("popularity", by="orders").fit(train)
    fallback = popular.recommend(np.zeros(1, np.int64), train.n_items)[0][0]
    catalog = build_catalog(train.transactions, train.items)
    similar = create_model("item_knn", similarity="cosine").fit(train)
    print(f"test fold: {train.n_customers} customers, {train.n_items} items; top_n {args.top_n}")
    print(f"{'model':<16}{'served nDCG@10':>16}{'list only':>12}{'model':>10}{'served R@20':>14}{'list only':>12}"
          f"{'model':>10}")
    results = []
    for label, (name, params) in MODELS.items():
        model = create_model(name, **params).fit(train)
        bundle = ModelBundle(train.customers, train.items, catalog, history,
                             {"personal": model, "similar": similar, "popular": popular})
        lists = score_bundle(bundle, PublishOptions(top_n=args.top_n))
        orders = first_purchase_orders(lists, history)
        served = evaluate(serve(orders, history, fallback), fold, "B")
        list_only = evaluate(serve(orders, history, fallback, list_only=True), fold, "B")
        direct = evaluate(model, fold, "B")
        print(f"{label:<16}{served['ndcg@10']:>16.4f}{list_only['ndcg@10']:>12.4f}{direct['ndcg@10']:>10.4f}"
              f"{served['recall@20']:>14.4f}{list_only['recall@20']:>12.4f}{direct['recall@20']:>10.4f}")
        results.append((label, served, list_only, direct))
    for label, served, list_only, direct in results:
        figures = {f"{kind}_{metric}": row[metric] for kind, row in
                   (("served", served), ("list_only", list_only), ("model", direct))
                   for metric in ("ndcg@10", "recall@20")}
        print(f"RESULT model={label} " + " ".join(f"{key}={value:.4f}" for key, value in figures.items()))


def first_purchase_orders(lists, history) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per customer row: the decoded record's ranked list and its first-purchase order (item rows)."""
    code = {name: i for i, name in enumerate(lists.sources)}
    beyond_blocks = lists.beyond_ranked or [None] * len(lists.customers)
    orders, start = [], 0
    for block, beyond in zip(lists.customers, beyond_blocks, strict=True):
        indptr = history.indptr[start:start + len(block.keys) + 1]
        records = encode_customer_records(block.rows(code), None, indptr, history.indices[indptr[0]:indptr[-1]],
                                          None if beyond is None else beyond.rows(code))
        for value in records:
            record = decode_customer_record(value)
            orders.append((record.ranked["item"], record.first_purchase_order()["item"]))
        start += len(block.keys)
    return orders


def serve(orders, history, fallback: np.ndarray, list_only: bool = False):
    """A recommend function walking each record as serving does: bought items dropped, popular fill."""

    def recommend(customers: np.ndarray, k: int, exclude_seen: bool) -> np.ndarray:
        answers = np.full((len(customers), k), -1, dtype=np.int64)
        for i, customer in enumerate(customers.tolist()):
            bought = set(history.indices[history.indptr[customer]:history.indptr[customer + 1]].tolist())
            ranked, first_purchases = orders[customer]
            walk = (ranked if list_only else first_purchases).tolist() + fallback.tolist()
            picked = list(dict.fromkeys(item for item in walk if item not in bought))[:k]
            answers[i, :len(picked)] = picked
        return answers

    return recommend


if __name__ == "__main__":
    main()
