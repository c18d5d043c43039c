"""Per-unit outcomes of an A/B test from its exposures and the shop's transactions.

Each exposed customer's orders and revenue are counted in the ``days`` from their first exposure, and
the same over the ``pre_days`` before it (the CUPED covariate). A customer who bought nothing keeps
zeros: leaving non-buyers out would compare buyers with buyers and hide any effect on conversion.
A customer whose window runs past the end of the transactions, or whose ``pre_days`` start before their
beginning, would be counted short, so they are left out and counted in the result. Units that never
bought anything are counted too; when none of them is a customer of the transactions, the ids of the two
files are written differently, and the outcomes are refused rather than reported as all zeros.
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
    never_bought: int  # exposed units (left out or not) with no purchase anywhere in the transactions


def unit_outcomes(exposures: pd.DataFrame, transactions: pd.DataFrame, *, days: int, pre_days: int,
                  source: str = "exposures") -> UnitOutcomes:
    """Orders, revenue (quantity x unit price) and conversion per exposed unit (a customer id) in
    ``[exposed_at, exposed_at + days)``, with ``pre_orders`` / ``pre_revenue`` over the ``pre_days``
    before; ``transactions`` in the canonical schema, cleaned."""
    if days < 1 or pre_days < 0:
        raise ABDataError(f"days must be >= 1 and pre_days >= 0, got days={days}, pre_days={pre_days}")
    require_columns(list(exposures.columns), EXPOSURE_COLUMNS, source)
    units = exposures[list(EXPOSURE_COLUMNS)].copy()
    customers = pd.Index(transactions[schema.CUSTOMER_ID].dropna().unique())
    units["unit_id"] = _unit_ids(units["unit_id"], customers)
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
    never_bought = int((~units["unit_id"].isin(customers)).sum())
    if len(units) and never_bought == len(units):
        raise ABDataError(f"{source}: none of the {len(units)} exposed units is a customer of the transactions "
                          f"(units {units['unit_id'].head(3).tolist()}, customers {customers[:3].tolist()}): the "
                          "two files most likely write the same customers' ids differently")
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
    return UnitOutcomes(units[columns], data_start, data_end, int(ends_after.sum()), int(starts_before.sum()),
                        never_bought)


def _unit_ids(values: pd.Series, customers: pd.Index) -> pd.Series:
    """Unit ids as the transaction loaders give customer ids: a float column (read as numbers, or as the
    text pandas writes for one, 40117.0) loses the ".0" of its whole numbers, as a Parquet source's
    customer ids do; other ids keep their text ("0042" stays "0042")."""
    ids = as_id_strings(values)
    numbers = _written_as_floats(values)
    if numbers is None:
        return ids
    floats = as_id_strings(numbers)
    # the reading that names more customers is theirs ("1e3" is text to the loaders, 1000 to a float)
    return floats if floats.isin(customers).sum() >= ids.isin(customers).sum() else ids


def _written_as_floats(values: pd.Series) -> pd.Series | None:
    """``values`` as numbers when every one is a number and some carry a decimal point or exponent."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return None  # as_id_strings already reads numbers
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    # integers alone are text ids as written: a long one would lose digits as a float
    if numbers.notna().sum() != text.notna().sum() or not text.str.contains(r"[.eE]", na=False).any():
        return None
    return numbers.astype("float64")
