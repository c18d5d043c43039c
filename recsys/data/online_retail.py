"""Adapter for the UCI "Online Retail" data set (Chen, Sain and Guo, 2012; CC BY 4.0).

Source columns: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID (a float
with nulls in the published file), Country. Customer ids become text without the float's decimal
("40117", not "40117.0"); null customer ids stay null for cleaning to count; there is no category.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import pandas as pd

from recsys.data import schema
from recsys.data.loaders import TransactionSchemaError, read_column_names, read_columns, validate_transactions

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
    present = read_column_names(path)
    missing = [c for c in COLUMNS if c not in present]
    if missing:
        problem = f"missing Online Retail column(s) {missing}; present: {present}"
        raise TransactionSchemaError(str(path), missing[0], problem)
    raw = read_columns(path, list(COLUMNS), text_columns=_TEXT_COLUMNS)
    return online_retail_to_canonical(raw, source=str(path))


def online_retail_to_canonical(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Rename and retype Online Retail columns; validation errors name ``source``."""
    # validate_transactions makes customer ids the integers the float column holds ("40117", not "40117.0")
    frame = raw.rename(columns=COLUMNS)
    frame[schema.CATEGORY] = pd.Series(pd.NA, index=frame.index, dtype=schema.DTYPES[schema.CATEGORY])
    try:
        return validate_transactions(frame, source=source)
    except TransactionSchemaError as exc:
        raise exc.named_as_in({canonical: name for name, canonical in COLUMNS.items()}) from None

