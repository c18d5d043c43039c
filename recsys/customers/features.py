"""Point-in-time behavioural features of each customer, the input of RFM, clustering and churn models.

Only rows with ``timestamp < cutoff`` are read (purchases and returns alike), so nothing on or after the
cutoff can change a feature: a model trained at one cutoff sees exactly what it would have seen live.
One row per customer with at least one purchase before the cutoff, indexed by ``customer_id`` and
sorted by it. Spend is ``quantity * unit_price``; an order is a distinct ``order_id``; times are in
days (fractional). ``NaN`` means "not defined for this customer" (e.g. no gap between purchases for a
one-order customer), never zero.

Features (``w`` runs over ``windows``, 30/90/180 days by default):

=========================  ===========================================================================
``recency_days``           days from the last purchase to the cutoff
``frequency``              distinct orders
``purchase_days``          distinct calendar days with a purchase
``monetary_total``         total spend
``monetary_mean``          mean spend per order (``monetary_total / frequency``)
``monetary_max``           spend of the largest order
``tenure_days``            days from the first purchase to the cutoff
``ipt_mean``               mean gap in days between consecutive purchase days (NaN below 2 days)
``ipt_std``                standard deviation of those gaps (NaN below 3 purchase days)
``ipt_cv``                 ``ipt_std / ipt_mean``: 0 = clockwork, > 1 = bursty (NaN when either is)
``recency_gap_ratio``      ``recency_days / ipt_mean``: how many usual gaps have passed since the last
                           purchase; well above 1 means overdue (NaN without a gap)
``basket_lines``           mean order lines per order
``basket_units``           mean units (summed quantity) per order
``return_count``           return lines before the cutoff (0 without returns)
``return_value``           value of those lines, ``quantity * unit_price`` with positive quantity
``return_rate``            ``return_value / monetary_total``
``orders_{w}d``            orders in ``[cutoff - w, cutoff)``
``spend_{w}d``             spend in ``[cutoff - w, cutoff)``
``orders_{w}d_trend``      ``orders_{w}d / (orders_{w}d + orders in [cutoff - 2w, cutoff - w))``: 0.5
                           is a steady pace, above speeding up, below slowing down (NaN when both
                           windows are empty)
``spend_{w}d_trend``       the same ratio for spend
``n_items``                distinct items bought
``n_categories``           distinct categories bought (NaN when the data has no categories)
``top_category_share``     share of order lines in the customer's most-bought category (NaN likewise)
``top_item_share``         share of order lines that are the customer's most-bought item
``country``                the country of most of the customer's lines (text; null when unknown)
=========================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys.data import schema

_DAY_NS = 86_400 * 10**9
_REQUIRED = (schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID, schema.TIMESTAMP, schema.QUANTITY,
             schema.UNIT_PRICE)


def _before(frame: pd.DataFrame, cutoff: pd.Timestamp, name: str) -> pd.DataFrame:
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lack columns {missing}")
    timestamps = pd.to_datetime(frame[schema.TIMESTAMP])
    if timestamps.isna().any():
        raise ValueError(f"{name} have null timestamps")
    rows = frame.loc[(timestamps < cutoff).to_numpy()]
    # A sum skips NaN, so an unknown quantity or price would read as zero spend.
    for column in (schema.QUANTITY, schema.UNIT_PRICE):
        bad = ~np.isfinite(rows[column].to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            raise ValueError(f"{name} have {int(bad.sum())} line(s) with a missing or non-finite {column} "
                             f"(first in order {rows[schema.ORDER_ID].iloc[int(np.argmax(bad))]!r})")
    return rows


def require_customer_ids(customer_ids: pd.Series) -> None:
    """Raise ValueError when a line has no customer id: grouped, all of them would be one customer."""
    n_null = int(customer_ids.isna().sum())
    if n_null:
        raise ValueError(f"transactions have null customer ids on {n_null} line(s)")


def customer_features(
    transactions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    returns: pd.DataFrame | None = None,
    windows: Sequence[int] = (30, 90, 180),
) -> pd.DataFrame:
    """Features of every customer with a purchase before ``cutoff``; see the module docstring.

    ``returns`` is ``CleaningResult.returns`` (positive quantities); without it the return features are 0.
    """
    cutoff = pd.Timestamp(cutoff)
    windows = tuple(int(w) for w in windows)
    if any(w <= 0 for w in windows):
        raise ValueError(f"windows must be positive day counts, got {windows}")
    lines = _before(transactions, cutoff, "transactions")
    require_customer_ids(lines[schema.CUSTOMER_ID])
    customer = lines[schema.CUSTOMER_ID].astype("string").to_numpy(dtype=object)
    time_ns = pd.to_datetime(lines[schema.TIMESTAMP]).to_numpy().astype("datetime64[ns]").astype(np.int64)
    cutoff_ns = cutoff.to_datetime64().astype("datetime64[ns]").astype(np.int64)
    age_days = (cutoff_ns - time_ns) / _DAY_NS
    quantity = lines[schema.QUANTITY].to_numpy(dtype=np.float64)
    spend = quantity * lines[schema.UNIT_PRICE].to_numpy(dtype=np.float64)
    line_frame = pd.DataFrame({"customer": customer, "order": lines[schema.ORDER_ID].to_numpy(dtype=object),
                               "age": age_days, "day": time_ns // _DAY_NS, "spend": spend, "quantity": quantity,
                               "item": lines[schema.ITEM_ID].to_numpy(dtype=object)})

    # Orders first: an order's age is its first line's, its spend the sum of its lines.
    orders = line_frame.groupby(["customer", "order"], sort=False).agg(
        age=("age", "max"), spend=("spend", "sum"), lines=("spend", "size"), units=("quantity", "sum"))
    orders = orders.reset_index()
    per_customer = orders.groupby("customer", sort=True)
    out = pd.DataFrame(index=pd.Index(sorted(per_customer.groups), name=schema.CUSTOMER_ID))
    out["recency_days"] = per_customer["age"].min()
    out["frequency"] = per_customer.size().astype(np.int64)
    out["monetary_total"] = per_customer["spend"].sum()
    out["monetary_mean"] = out["monetary_total"] / out["frequency"]
    out["monetary_max"] = per_customer["spend"].max()
    out["tenure_days"] = per_customer["age"].max()
    out["basket_lines"] = per_customer["lines"].mean()
    out["basket_units"] = per_customer["units"].mean()

    out = out.join(_gap_features(line_frame))
    out["recency_gap_ratio"] = out["recency_days"] / out["ipt_mean"]
    out = out.join(_return_features(returns, cutoff, out["monetary_total"]))
    for w in windows:
        recent = orders["age"] <= w
        earlier = (orders["age"] > w) & (orders["age"] <= 2 * w)
        counts = pd.DataFrame({
            "n_recent": recent.astype(np.int64), "n_earlier": earlier.astype(np.int64),
            "s_recent": orders["spend"].where(recent, 0.0), "s_earlier": orders["spend"].where(earlier, 0.0),
            "customer": orders["customer"],
        }).groupby("customer", sort=True).sum()
        out[f"orders_{w}d"] = counts["n_recent"].astype(np.int64)
        out[f"spend_{w}d"] = counts["s_recent"]
        out[f"orders_{w}d_trend"] = _share(counts["n_recent"], counts["n_earlier"])
        out[f"spend_{w}d_trend"] = _share(counts["s_recent"], counts["s_earlier"])
    out = out.join(_mix_features(lines, customer, line_frame["item"]))
    out["country"] = _country(lines, customer, out.index)
    return out


def _share(recent: pd.Series, earlier: pd.Series) -> pd.Series:
    total = recent + earlier
    return (recent / total.where(total > 0)).astype(np.float64)


def _gap_features(line_frame: pd.DataFrame) -> pd.DataFrame:
    # Gaps between purchase days, not orders: two orders on one afternoon are one shopping trip.
    days = line_frame[["customer", "day"]].drop_duplicates().sort_values(["customer", "day"])
    days["gap"] = days.groupby("customer", sort=False)["day"].diff()
    grouped = days.groupby("customer", sort=True)
    gaps = pd.DataFrame({"purchase_days": grouped.size().astype(np.int64), "ipt_mean": grouped["gap"].mean(),
                         "ipt_std": grouped["gap"].std(ddof=1)})
    gaps["ipt_cv"] = gaps["ipt_std"] / gaps["ipt_mean"]
    return gaps


def _return_features(returns: pd.DataFrame | None, cutoff: pd.Timestamp, monetary: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame(index=monetary.index)
    out["return_count"] = 0
    out["return_value"] = 0.0
    if returns is not None and len(returns):
        rows = _before(returns, cutoff, "returns")
        value = rows[schema.QUANTITY].abs().to_numpy(dtype=np.float64) * rows[schema.UNIT_PRICE].to_numpy(
            dtype=np.float64)
        grouped = pd.DataFrame({"customer": rows[schema.CUSTOMER_ID].astype("string").to_numpy(dtype=object),
                                "value": value}).groupby("customer")["value"].agg(["size", "sum"])
        grouped = grouped.reindex(out.index)
        out["return_count"] = grouped["size"].fillna(0).astype(np.int64)
        out["return_value"] = grouped["sum"].fillna(0.0)
    out["return_rate"] = out["return_value"] / monetary
    return out


def _mix_features(lines: pd.DataFrame, customer: np.ndarray, item: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({"customer": customer, "item": item.to_numpy()})
    item_counts = frame.groupby(["customer", "item"], sort=False).size()
    by_customer = item_counts.groupby(level=0, sort=True)
    out = pd.DataFrame({"n_items": by_customer.size().astype(np.int64),
                        "top_item_share": by_customer.max() / by_customer.sum()})
    if schema.CATEGORY in lines.columns and lines[schema.CATEGORY].notna().any():
        frame["category"] = lines[schema.CATEGORY].astype("string").to_numpy(dtype=object)
        known = frame.dropna(subset=["category"])
        category_counts = known.groupby(["customer", "category"], sort=False).size().groupby(level=0, sort=True)
        out["n_categories"] = category_counts.size().reindex(out.index).astype(np.float64)
        out["top_category_share"] = (category_counts.max() / category_counts.sum()).reindex(out.index)
    else:
        out["n_categories"] = np.nan
        out["top_category_share"] = np.nan
    return out


def _country(lines: pd.DataFrame, customer: np.ndarray, index: pd.Index) -> pd.Series:
    # Aligned to the customers: an unaligned series would give an empty result a row of its own.
    if schema.COUNTRY not in lines.columns:
        return pd.Series(pd.NA, index=index, dtype="string")
    frame = pd.DataFrame({"customer": customer, "country": lines[schema.COUNTRY].astype("string").to_numpy(
        dtype=object)}).dropna()
    counts = frame.groupby(["customer", "country"], sort=True).size().rename("n").reset_index()
    # Ties go to the alphabetically first country, so the answer does not depend on row order.
    top = counts.sort_values(["customer", "n", "country"], ascending=[True, False, True]).drop_duplicates("customer")
    return top.set_index("customer")["country"].astype("string").reindex(index)
