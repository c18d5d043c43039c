"""Train/test splits of a transactions frame, and the helpers that turn a test frame into ground truth.

Three splits, from most to least realistic for a shop:

* :func:`temporal_split`: one global cut-off date; the model never sees the future of anyone.
* :func:`leave_last_out`: each customer's last n orders are held out (the classic next-basket set-up).
* :func:`stratified_split`: a per-customer random split, Microsoft Recommenders' ``python_stratified_split``.

Every split returns ``(train, test)`` as new frames in the input's row order and leaves the input as is.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Literal

import numpy as np
import pandas as pd

from recsys.data.schema import CUSTOMER_ID, ITEM_ID, ORDER_ID, TIMESTAMP


def temporal_split(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp | str,
    end: pd.Timestamp | str | None = None,
    *,
    col_timestamp: str = TIMESTAMP,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train is every row strictly before ``cutoff``; test is ``cutoff <= timestamp < end``.

    With ``end=None`` the test side runs to the last row. Rows at or after ``end`` are in neither side.
    A ``cutoff`` or ``end`` with a time zone is taken in UTC, the zone the loaders store every timestamp in.
    """
    _require_columns(transactions, [col_timestamp])
    cutoff = as_naive_utc(cutoff)
    timestamps = transactions[col_timestamp]
    if timestamps.isna().any():
        raise ValueError(f"{col_timestamp!r} has missing values; a row without a time has no side")
    train_mask = timestamps < cutoff
    test_mask = ~train_mask
    if end is not None:
        end = as_naive_utc(end)
        if end <= cutoff:
            raise ValueError(f"end ({end}) must be after cutoff ({cutoff})")
        test_mask &= timestamps < end
    return transactions[train_mask].copy(), transactions[test_mask].copy()


def as_naive_utc(moment: pd.Timestamp | str) -> pd.Timestamp:
    """``moment`` as a naive UTC timestamp, comparable with loaded timestamps; naive input is kept as is."""
    moment = pd.Timestamp(moment)
    return moment if moment.tzinfo is None else moment.tz_convert("UTC").tz_localize(None)


def leave_last_out(
    transactions: pd.DataFrame,
    n: int = 1,
    by: Literal["order", "row"] = "order",
    *,
    col_customer: str = CUSTOMER_ID,
    col_order: str = ORDER_ID,
    col_timestamp: str = TIMESTAMP,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each customer's last ``n`` orders (or rows) go to test, the rest to train.

    ``by="order"`` keeps the lines of one order together. An order's time is the earliest timestamp among
    its lines; orders are ranked by that time, ties broken by the order id's sort order, so the result does
    not depend on row order. ``by="row"`` ranks single rows by timestamp, ties broken by position in the
    input. Customers with ``n`` or fewer orders (rows) stay wholly in train: holding out their whole
    history would leave nothing to recommend from.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if by == "order":
        keys = [col_customer, col_order]
        _require_columns(transactions, [*keys, col_timestamp])
        _require_complete(transactions, [*keys, col_timestamp])
        events = transactions.groupby(keys, sort=False, observed=True)[col_timestamp].min().reset_index()
        events = events.sort_values([col_customer, col_timestamp, col_order], kind="stable")
    elif by == "row":
        _require_columns(transactions, [col_customer, col_timestamp])
        _require_complete(transactions, [col_customer, col_timestamp])
        events = pd.DataFrame(
            {
                col_customer: transactions[col_customer].to_numpy(),
                col_timestamp: transactions[col_timestamp].to_numpy(),
                "_position": np.arange(len(transactions)),
            }
        ).sort_values([col_customer, col_timestamp, "_position"], kind="stable")
    else:
        raise ValueError(f"by must be 'order' or 'row', got {by!r}")

    groups = events.groupby(col_customer, sort=False, observed=True)
    from_last = groups.cumcount(ascending=False).to_numpy()
    size = groups[col_customer].transform("size").to_numpy()
    held_out = events[(from_last < n) & (size > n)]

    if by == "order":
        test_mask = pd.MultiIndex.from_frame(transactions[keys]).isin(pd.MultiIndex.from_frame(held_out[keys]))
    else:
        test_mask = np.zeros(len(transactions), dtype=bool)
        test_mask[held_out["_position"].to_numpy()] = True
    return transactions[~test_mask].copy(), transactions[test_mask].copy()


def stratified_split(
    transactions: pd.DataFrame,
    ratio: float = 0.75,
    seed: int = 42,
    min_rating: int = 1,
    filter_by: Literal["user", "item"] = "user",
    *,
    col_user: str = CUSTOMER_ID,
    col_item: str = ITEM_ID,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-customer (or per-item) random split at ``ratio``, as Recommenders' ``python_stratified_split``.

    Semantics of Recommenders 1.2 for a float ratio, row for row:

    * with ``min_rating > 1``, customers (items when ``filter_by="item"``) with fewer rows are dropped
      from both sides first;
    * each remaining row draws a uniform number from ``np.random.RandomState(seed)`` in input order
      (the same stream as Recommenders' ``np.random.seed(seed); np.random.rand(n)``);
    * within each group (``filter_by`` picks customers or items) rows are ordered by that number and
      the first round(ratio * m) of a group's m rows go to train, rounding half to even (NumPy's
      rounding, which Recommenders' ``round`` of a Series applies). At 0.75 a customer with one row or
      two rows is wholly in train (0.75 -> 1, 1.5 -> 2), one with six rows puts 4 there (4.5 -> 4).

    Recommenders 1.2.1 (the released wheel) rounds; older sources kept rows with j / m <= ratio, i.e.
    floor(ratio * m), which sends one-row customers to test. Unlike Recommenders, the input is not
    modified, the outputs keep the input's row order rather than being sorted by group, and only a
    single float ratio (two sides) is accepted.
    """
    if isinstance(ratio, bool) or not isinstance(ratio, float) or not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be a float strictly between 0 and 1, got {ratio!r}")
    if min_rating < 1:
        raise ValueError(f"min_rating must be at least 1, got {min_rating!r}")
    if filter_by not in ("user", "item"):
        raise ValueError(f"filter_by must be 'user' or 'item', got {filter_by!r}")
    _require_columns(transactions, [col_user, col_item])
    group_col = col_user if filter_by == "user" else col_item
    _require_complete(transactions, [group_col])

    data = transactions
    if min_rating > 1:
        sizes = data.groupby(group_col, sort=False, observed=True)[group_col].transform("size")
        data = data[sizes >= min_rating]

    order = pd.DataFrame(
        {
            "group": data[group_col].to_numpy(),
            "random": np.random.RandomState(seed).rand(len(data)),
            "position": np.arange(len(data)),
        }
    ).sort_values(["group", "random"], kind="stable")
    groups = order.groupby("group", sort=False, observed=True)
    rank = (groups.cumcount() + 1).to_numpy()
    n_train = np.round(ratio * groups["group"].transform("size").to_numpy())

    train_mask = np.zeros(len(data), dtype=bool)
    train_mask[order["position"].to_numpy()[rank <= n_train]] = True
    return data[train_mask].copy(), data[~train_mask].copy()


def relevant_items(
    test: pd.DataFrame,
    customers: Iterable[Hashable] | None = None,
    *,
    col_customer: str = CUSTOMER_ID,
    col_item: str = ITEM_ID,
) -> dict[Hashable, set[Hashable]]:
    """Each customer's set of test items: the ground truth for the ranking metrics.

    With ``customers`` given, the dict has exactly those keys in that order, with an empty set for a
    customer absent from ``test`` (the metrics exclude such customers and count them); without it, every
    customer in ``test`` in sorted order.
    """
    _require_columns(test, [col_customer, col_item])
    grouped = {
        customer: set(items) for customer, items in test.groupby(col_customer, sort=True, observed=True)[col_item]
    }
    if customers is None:
        return grouped
    return {customer: grouped.get(customer, set()) for customer in customers}


def holdout_customers(train: pd.DataFrame, test: pd.DataFrame, *, col_customer: str = CUSTOMER_ID) -> list[Hashable]:
    """Customers with at least one row in both ``train`` and ``test``, sorted: the ones worth scoring."""
    _require_columns(train, [col_customer])
    _require_columns(test, [col_customer])
    both = pd.Index(train[col_customer].dropna().unique()).intersection(pd.Index(test[col_customer].dropna().unique()))
    return sorted(both)


def _require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"missing columns {missing}; the frame has {list(frame.columns)}")


def _require_complete(frame: pd.DataFrame, columns: list[str]) -> None:
    incomplete = [c for c in columns if frame[c].isna().any()]
    if incomplete:
        raise ValueError(f"columns {incomplete} have missing values; a split needs every key present")
