"""Adapter for the UCI "Online Retail" data set (Chen, Sain and Guo, 2012; CC BY 4.0).

Source columns: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID (a float
with nulls in the published file), Country. Customer ids become text without the float's decimal
("17850", not "17850.0"); null customer ids stay null for cleaning to count; there is no category.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from recsys.data import schema
from recsys.data.loaders import validate_transactions

COLUMNS: dict[str, str] = {
    "InvoiceNo": schema.ORDER_ID,
    "StockCode": schema.ITEM_ID,
    "Description": schema.ITEM_NAME,
    "Quantity": schema.QUANTITY,
    "InvoiceDate": schema.TIMESTAMP,
    "UnitPrice": schema.UNIT_PRICE,
    "CustomerID": schema.CUSTOMER_ID,
    "Country": schema.COUNTRY,
}
_TEXT_COLUMNS = ("InvoiceNo", "StockCode", "CustomerID")


def load_online_retail(path: str | PathLike[str]) -> pd.DataFrame:
    """Read Online Retail from Parquet or CSV and return it validated in the canonical schema."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        raw = pd.read_parquet(path, columns=list(COLUMNS))
    elif name.endswith((".csv", ".csv.gz")):
        raw = pd.read_csv(path, usecols=list(COLUMNS), dtype={c: "string" for c in _TEXT_COLUMNS})
    else:
        raise ValueError(f"{path}: unsupported file type; expected .parquet or .csv (export the .xlsx first)")
    return online_retail_to_canonical(raw, source=str(path))


def online_retail_to_canonical(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Rename and retype Online Retail columns; validation errors name ``source``."""
    frame = raw.rename(columns=COLUMNS)
    if schema.CUSTOMER_ID in frame.columns:
        frame[schema.CUSTOMER_ID] = _customer_ids(frame[schema.CUSTOMER_ID])
    frame[schema.CATEGORY] = pd.Series(pd.NA, index=frame.index, dtype=schema.DTYPES[schema.CATEGORY])
    return validate_transactions(frame, source=source)


def _customer_ids(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("Int64").astype("string")
    # A CSV export of the float column writes "17850.0".
    return values.astype("string").str.strip().str.replace(r"^(\d+)\.0*$", r"\1", regex=True)
