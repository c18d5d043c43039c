"""Read transactions from CSV or Parquet and validate them against the canonical schema.

``validate_transactions`` is the boundary every source passes through (files, adapters, the synthetic
generator): it returns a frame with exactly the columns and dtypes of :data:`schema.DTYPES`, or raises a
:class:`TransactionSchemaError` that names the file, the column, the first bad rows and their values.
What it does *not* reject is left to :mod:`recsys.data.cleaning`: null customer ids, cancellations,
non-positive quantities or prices, non-product items.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data import schema

_MAX_REPORTED_ROWS = 5
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COLUMN_ORDER: tuple[str, ...] = schema.REQUIRED_COLUMNS + schema.OPTIONAL_COLUMNS
_ID_COLUMNS = (schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID)
_NS_MIN = pd.Timestamp.min
_NS_MAX = pd.Timestamp.max


class TransactionSchemaError(ValueError):
    """A transactions source does not fit the canonical schema.

    ``rows`` are 0-based positions of data rows (not counting a CSV header), at most the first five;
    ``values`` are the offending values at those rows. For a missing column both are empty.
    """

    def __init__(self, source: str, column: str, problem: str, rows: Sequence[int] = (), values: Sequence[Any] = ()):
        self.source = source
        self.column = column
        self.rows = tuple(int(r) for r in rows)
        self.values = tuple(values)
        message = f"{source}: column {column!r}: {problem}"
        if self.rows:
            message += f" at rows {list(self.rows)} (0-based data rows), values {list(self.values)!r}"
        super().__init__(message)


def load_transactions(path: str | PathLike[str], columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file of order lines and return it validated in the canonical schema.

    ``columns`` maps source column names to canonical ones (e.g. ``{"InvoiceNo": "order_id"}``);
    canonical names already present need no entry. Columns that are neither canonical nor renamed to a
    canonical name are not kept.
    """
    path = Path(path)
    rename = dict(columns or {})
    unknown = sorted(set(rename.values()) - set(schema.DTYPES))
    if unknown:
        raise ValueError(f"columns maps to unknown canonical name(s) {unknown}; known: {list(schema.DTYPES)}")
    source_of = {canonical: source for source, canonical in rename.items()}
    wanted = {source_of.get(name, name) for name in schema.DTYPES}

    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        present = pd.read_csv(path, nrows=0).columns.tolist()
    elif name.endswith(_PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        present = pq.read_schema(path).names
    else:
        raise ValueError(
            f"{path}: unsupported file type; expected a name ending in one of {list(_CSV_SUFFIXES + _PARQUET_SUFFIXES)}"
        )
    # Checked before the full read so that the error lists every column of the file, kept or not.
    renamed = {rename.get(c, c) for c in present}
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in renamed]
    if missing:
        raise TransactionSchemaError(str(path), missing[0], f"missing required column(s) {missing}; present: {present}")

    keep = [c for c in present if c in wanted]
    if name.endswith(_CSV_SUFFIXES):
        # Ids must be read as text: a numeric-looking id column with a null becomes float ("17850.0")
        # and leading zeros vanish.
        id_sources = {source_of.get(c, c) for c in _ID_COLUMNS}
        frame = pd.read_csv(path, usecols=keep, dtype={c: "string" for c in id_sources if c in keep})
    else:
        frame = pd.read_parquet(path, columns=keep)
    return validate_transactions(frame.rename(columns=rename), source=str(path))


def validate_transactions(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return ``frame`` with exactly the canonical columns and dtypes, or raise TransactionSchemaError.

    Required columns must be present; optional ones are added as null strings when absent; other columns
    are dropped. Ids are stripped text (integral floats such as ``17850.0`` become ``"17850"``; empty
    becomes null). Order and item ids must not be null; timestamps must parse (time zones are converted to
    naive UTC); quantities and unit prices must be finite numbers. The index is reset.
    """
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise TransactionSchemaError(
            source,
            missing[0],
            f"missing required column(s) {missing}; present: {[str(c) for c in frame.columns]}",
        )
    frame = frame.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for column in _ID_COLUMNS:
        ids = _as_id_strings(frame[column])
        if column != schema.CUSTOMER_ID:
            _raise_if_bad(source, column, ids.isna().to_numpy(), frame[column], "null or empty id")
        out[column] = ids
    out[schema.TIMESTAMP] = _as_timestamps(frame[schema.TIMESTAMP], source)
    for column in (schema.QUANTITY, schema.UNIT_PRICE):
        out[column] = _as_numbers(frame[column], source, column)
    for column in schema.OPTIONAL_COLUMNS:
        if column in frame.columns:
            out[column] = frame[column].astype(schema.DTYPES[column])
        else:
            out[column] = pd.Series(pd.NA, index=frame.index, dtype=schema.DTYPES[column])
    return pd.DataFrame({c: out[c] for c in _COLUMN_ORDER}, index=frame.index)


def _raise_if_bad(source: str, column: str, bad: np.ndarray, original: pd.Series, problem: str) -> None:
    if not bad.any():
        return
    positions = np.flatnonzero(bad)
    first = positions[:_MAX_REPORTED_ROWS]
    values = [_plain(v) for v in original.iloc[first].tolist()]
    raise TransactionSchemaError(source, column, f"{len(positions)} row(s) with {problem}", first, values)


def _plain(value: Any) -> Any:
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else value


def _as_id_strings(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if (np.mod(finite.to_numpy(), 1) == 0).all():
            values = values.astype("Int64")
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _as_timestamps(values: pd.Series, source: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = values
    else:
        with warnings.catch_warnings():
            # Failures are reported below with their rows; pandas' "could not infer format" adds nothing.
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(values, errors="coerce", utc=True)
        retry = parsed.isna() & values.notna()
        # Inference fixes one format from the first value; rows written in another format get a second,
        # per-value chance before they count as bad.
        if retry.any():
            parsed[retry] = pd.to_datetime(values[retry], errors="coerce", utc=True, format="mixed")
        parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna() | (parsed < _NS_MIN) | (parsed > _NS_MAX)
    _raise_if_bad(source, schema.TIMESTAMP, bad.to_numpy(), values, "missing or unparseable timestamp")
    return parsed.astype(schema.DTYPES[schema.TIMESTAMP])


def _as_numbers(values: pd.Series, source: str, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    array = np.asarray(numbers.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    _raise_if_bad(source, column, ~np.isfinite(array), values, "missing or non-numeric value")
    return pd.Series(array, index=values.index, dtype=schema.DTYPES[column])
