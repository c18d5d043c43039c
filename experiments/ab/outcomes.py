"""Per-unit outcomes of an A/B test from its exposures and the shop's transactions.

Each exposed customer's orders and revenue are counted in the ``days`` from their first exposure, and
the same over the ``pre_days`` before it (the CUPED covariate). A customer who bought nothing keeps
zeros: leaving non-buyers out would compare buyers with buyers and hide any effect on conversion.
A customer whose window runs past the end of the transactions, or whose ``pre_days`` start before their
beginning, would be counted short, so they are left out and counted in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.ab.report import ABDataError, data_rows, require_columns
from recsys.data import schema
from recsys.data.loaders import as_id_strings

EXPOSURE_COLUMNS = ("unit_id", "arm", "exposed_at")
OUTCOME_COLUMNS = ("orders", "revenue", "converted", "pre_orders", "pre_revenue")


@dataclass(frozen=True)
class UnitOutcomes:
    frame: pd.DataFrame  # unit_id, arm, exposed_at, then OUTCOME_COLUMNS
    data_start: pd.Timestamp  # the first transaction: pre-exposure windows must start at or after it
    data_end: pd.Timestamp  # the last transaction: windows must end before it
    ends_after_data: int  # exposed units left out because their window runs past data_end
    starts_before_data: int  # ... because their pre-exposure window starts before data_start


def unit_outcomes(exposures: pd.DataFrame, transactions: pd.DataFrame, *, days: int, pre_days: int,
                  source: str = "exposures") -> UnitOutcomes:
    """Orders, revenue (quantity x unit price) and conversion per exposed unit (a customer id) in
    ``[exposed_at, exposed_at + days)``, with ``pre_orders`` / ``pre_revenue`` over the ``pre_days``
    before; ``transactions`` in the canonical schema, cleaned."""
    if days < 1 or pre_days < 0:
        raise ABDataError(f"days must be >= 1 and pre_days >= 0, got days={days}, pre_days={pre_days}")
    require_columns(list(exposures.columns), EXPOSURE_COLUMNS, source)
    units = exposures[list(EXPOSURE_COLUMNS)].copy()
    # the ids the transaction loaders give customers: a unit read as 17850.0 is customer "17850"
    units["unit_id"] = as_id_strings(units["unit_id"])
    empty = units["unit_id"].isna().to_numpy()
    if empty.any():
        raise ABDataError(f"{source}: column 'unit_id' is empty on rows {data_rows(empty)}")
    repeated = units["unit_id"].duplicated(keep=False)
    if repeated.any():
        shown = list(dict.fromkeys(units.loc[repeated, "unit_id"]))[:5]
        raise ABDataError(f"{source}: unit(s) {shown} appear more than once ({int(repeated.sum())} rows); "
                          "give each unit's first exposure")
    exposed = pd.to_datetime(units["exposed_at"], errors="coerce", utc=True, format="ISO8601")
    bad = exposed.isna().to_numpy()
    if bad.any():
        raise ABDataError(f"{source}: column 'exposed_at' is not an ISO 8601 time at rows {data_rows(bad)}, "
                          f"e.g. {units['exposed_at'].iloc[int(np.argmax(bad))]!r}")
    units["exposed_at"] = exposed.dt.tz_localize(None)  # transactions are naive UTC
    data_start, data_end = transactions[schema.TIMESTAMP].min(), transactions[schema.TIMESTAMP].max()
    ends_after = (units["exposed_at"] + pd.Timedelta(days=days) > data_end).to_numpy()
    starts_before = (units["exposed_at"] - pd.Timedelta(days=pre_days) < data_start).to_numpy() & ~ends_after
    units = units[~ends_after & ~starts_before].reset_index(drop=True)
    lines = transactions[[schema.CUSTOMER_ID, schema.ORDER_ID, schema.TIMESTAMP]].assign(
        amount=transactions[schema.QUANTITY] * transactions[schema.UNIT_PRICE])
    lines = lines.merge(units[["unit_id", "exposed_at"]], left_on=schema.CUSTOMER_ID, right_on="unit_id")
    offset = lines[schema.TIMESTAMP] - lines["exposed_at"]
    after = lines[(offset >= pd.Timedelta(0)) & (offset < pd.Timedelta(days=days))]
    before = lines[(offset < pd.Timedelta(0)) & (offset >= -pd.Timedelta(days=pre_days))]
    for prefix, part in (("", after), ("pre_", before)):
        totals = part.groupby("unit_id").agg(orders=(schema.ORDER_ID, "nunique"), revenue=("amount", "sum"))
        units[f"{prefix}orders"] = units["unit_id"].map(totals["orders"]).fillna(0).astype("int64")
        units[f"{prefix}revenue"] = units["unit_id"].map(totals["revenue"]).fillna(0.0).round(2)
    units["converted"] = (units["orders"] > 0).astype("int64")
    columns = [*EXPOSURE_COLUMNS, *OUTCOME_COLUMNS]
    return UnitOutcomes(units[columns], data_start, data_end, int(ends_after.sum()), int(starts_before.sum()))
