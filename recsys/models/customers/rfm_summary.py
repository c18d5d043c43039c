"""Per-customer frequency / recency / age / spend summary, the input of BG/NBD and Gamma-Gamma.

Definitions follow Fader, Hardie and Lee and the ``lifetimes`` package:

- time is counted in whole days: a purchase's time is its calendar day, and all purchases on one day
  are one transaction (their spend is summed);
- ``frequency`` is the number of *repeat* transactions: distinct purchase days minus one;
- ``recency`` is the time from the first to the last purchase day (0 without repeats);
- ``T`` is the time from the first purchase day to the last day observed;
- ``monetary_value`` is the mean spend of the repeat transactions, 0 without repeats (the first
  purchase is left out because it is not drawn from the same spend process).

The summary is point in time: only rows with ``timestamp < cutoff`` are read, and the last day observed
is the day holding the instant just before ``cutoff`` (so a midnight cutoff ``1997-10-01`` observes up
to and including ``1997-09-30``). This is ``lifetimes.utils.summary_data_from_transaction_data`` with
``observation_period_end`` set to that last day, and it reproduces the published CDNOW 39-week
calibration summary exactly with ``cutoff="1997-10-01"`` and ``time_unit="W"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data import schema

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_DAYS_PER_UNIT = {"D": 1.0, "W": 7.0}


def summarize_purchases(
    transactions: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    time_unit: str = "D",
    first_date: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Summarise each customer's purchases before ``cutoff``.

    ``time_unit`` is ``"D"`` (days) or ``"W"`` (weeks of 7 days, fractional, as in the CDNOW
    summaries). ``first_date``, if given, starts the observation window: earlier rows are ignored, so a
    customer's first purchase is their first one on or after that date. Spend is
    ``quantity * unit_price``. Returns a frame indexed by customer id with :data:`SUMMARY_COLUMNS`,
    one row per customer with at least one purchase in the window, sorted by customer id. Ids are text,
    converted as :func:`recsys.customers.features.customer_features` converts them (``40502`` becomes
    ``"40502"``), so the two frames share one index.
    """
    if time_unit not in _DAYS_PER_UNIT:
        raise ValueError(f"time_unit must be one of {sorted(_DAYS_PER_UNIT)}, got {time_unit!r}")
    missing = [c for c in (schema.CUSTOMER_ID, schema.TIMESTAMP, schema.QUANTITY, schema.UNIT_PRICE)
               if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack columns {missing}")
    cutoff = pd.Timestamp(cutoff)
    timestamps = pd.to_datetime(transactions[schema.TIMESTAMP])
    if timestamps.isna().any():
        raise ValueError("transactions have null timestamps")
    keep = (timestamps < cutoff).to_numpy()
    if first_date is not None:
        first_date = pd.Timestamp(first_date)
        if first_date >= cutoff:
            raise ValueError(f"first_date {first_date} is not before cutoff {cutoff}")
        keep = keep & (timestamps >= first_date).to_numpy()
    window = pd.DataFrame(
        {
            "customer": transactions[schema.CUSTOMER_ID].astype("string").to_numpy(dtype=object)[keep],
            "day": timestamps.to_numpy()[keep].astype("datetime64[D]"),
            "spend": (transactions[schema.QUANTITY].to_numpy(dtype=np.float64)
                      * transactions[schema.UNIT_PRICE].to_numpy(dtype=np.float64))[keep],
        }
    )
    if window["customer"].isna().any():
        raise ValueError("transactions have null customer ids")
    last_day = (cutoff - pd.Timedelta(1, "ns")).to_datetime64().astype("datetime64[D]")
    unit = _DAYS_PER_UNIT[time_unit]
    if window.empty:
        return pd.DataFrame(
            {name: pd.Series(dtype=np.float64) for name in SUMMARY_COLUMNS},
            index=pd.Index([], name=schema.CUSTOMER_ID),
        )

    days = window.groupby(["customer", "day"], sort=True, observed=True)["spend"].sum().reset_index()
    day_number = days["day"].to_numpy().astype("datetime64[D]").astype(np.int64)
    per_customer = days.groupby("customer", sort=True, observed=True)
    first = per_customer["day"].transform("min").to_numpy().astype("datetime64[D]").astype(np.int64)
    is_repeat = day_number > first
    days["repeat_spend"] = np.where(is_repeat, days["spend"].to_numpy(), 0.0)
    days["day_number"] = day_number
    grouped = days.groupby("customer", sort=True, observed=True).agg(
        n_days=("day_number", "size"),
        first=("day_number", "min"),
        last=("day_number", "max"),
        repeat_spend=("repeat_spend", "sum"),
    )
    frequency = grouped["n_days"].to_numpy(dtype=np.float64) - 1.0
    last_number = np.int64(last_day.astype(np.int64))
    summary = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (grouped["last"] - grouped["first"]).to_numpy(dtype=np.float64) / unit,
            "T": (last_number - grouped["first"]).to_numpy(dtype=np.float64) / unit,
            "monetary_value": np.divide(
                grouped["repeat_spend"].to_numpy(dtype=np.float64),
                frequency,
                out=np.zeros_like(frequency),
                where=frequency > 0,
            ),
        },
        index=pd.Index(grouped.index, name=schema.CUSTOMER_ID),
    )
    return summary
