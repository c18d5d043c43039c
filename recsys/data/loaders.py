"""Read transactions from CSV or Parquet and validate them against the canonical schema.

``validate_transactions`` is the boundary every source passes through (files, adapters, the synthetic
generator): it returns a frame with exactly the columns and dtypes of :data:`schema.DTYPES`, or raises a
:class:`TransactionSchemaError` that names the file, the column, the first bad rows and their values.
What it does *not* reject is left to :mod:`recsys.data.cleaning`: null customer ids, cancellations,
non-positive quantities or prices, non-product items.

``read_column_names`` and ``read_columns`` are the file readers the loaders and adapters share; they turn
what is wrong with a file as a whole (its type, emptiness, encoding, a CSV row longer than the header)
into a :class:`TransactionSchemaError` too.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import warnings
import zipfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES  # not public; the markers read_csv uses by default

from recsys.data import schema

_MAX_REPORTED_ROWS = 5
_FORMAT_PROBES = 100  # values tried for a timestamp format before the column counts as unparseable
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_COLUMN_ORDER: tuple[str, ...] = schema.REQUIRED_COLUMNS + schema.OPTIONAL_COLUMNS
_FLOAT_EXACT_LIMIT = 2.0**53  # floats below it in magnitude are exact integers in int64 too
_DEFAULT_NA_MARKERS = sorted(STR_NA_VALUES)
_ID_COLUMNS = (schema.ORDER_ID, schema.CUSTOMER_ID, schema.ITEM_ID)
_NS_MIN = pd.Timestamp.min
_NS_MAX = pd.Timestamp.max
_NUMERIC_TIMESTAMP = (
    "a number instead of a date (pandas would read 1704067200 or 20240102 as nanoseconds after 1970); "
    "accepted: ISO 8601 dates or datetimes as text, e.g. '2024-01-02', '2024-01-02 10:30:00', "
    "'2024-01-02T10:30:00+01:00'"
)


class TransactionSchemaError(ValueError):
    """A transactions source does not fit the canonical schema.

    ``rows`` are 0-based positions of data rows (not counting a CSV header), at most the first five;
    ``values`` are the offending values at those rows. For a missing column both are empty. ``column`` is
    None when the file as a whole is at fault (its type, emptiness, encoding or CSV layout).
    """

    def __init__(
        self, source: str, column: str | None, problem: str, rows: Sequence[int] = (), values: Sequence[Any] = (),
        source_column: str | None = None,
    ):
        self.source = source
        self.column = column
        self.problem = problem
        self.rows = tuple(int(r) for r in rows)
        self.values = tuple(values)
        self.source_column = source_column
        named = repr(column) if source_column in (None, column) else f"{source_column!r} ({column})"
        message = f"{source}: {problem}" if column is None else f"{source}: column {named}: {problem}"
        if self.rows:
            message += f" at rows {list(self.rows)} (0-based data rows), values {list(self.values)!r}"
        super().__init__(message)

    def named_as_in(self, source_of: Mapping[str, str]) -> TransactionSchemaError:
        """This error with its column named as the file names it (``'Quantity' (quantity)``), given
        ``source_of``: canonical name -> the file's name for it."""
        original = source_of.get(self.column) if self.column is not None else None
        if original is None or original == self.column:
            return self
        return TransactionSchemaError(self.source, self.column, self.problem, self.rows, self.values, original)


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

    present = read_column_names(path)
    # Checked before the full read so that the error lists every column of the file, kept or not.
    renamed = {rename.get(c, c) for c in present}
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in renamed]
    if missing:
        raise TransactionSchemaError(str(path), missing[0], f"missing required column(s) {missing}; present: {present}")

    keep = [c for c in present if c in wanted]
    # Ids must be read as text: a numeric-looking id column with a null becomes float ("40117.0")
    # and leading zeros vanish.
    id_sources = {source_of.get(c, c) for c in _ID_COLUMNS}
    frame = read_columns(path, keep, text_columns=id_sources)
    try:
        return validate_transactions(frame.rename(columns=rename), source=str(path))
    except TransactionSchemaError as exc:
        raise exc.named_as_in(source_of) from None


def read_column_names(path: Path) -> list[str]:
    """Return the columns of a CSV file (its header) or a Parquet file, or raise TransactionSchemaError."""
    if is_csv_file(path):
        return _read_csv(path, nrows=0).columns.tolist()
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).names
    except pa.ArrowInvalid as exc:
        raise TransactionSchemaError(str(path), None, f"not a readable Parquet file ({exc})") from exc


def read_columns(path: Path, columns: Sequence[str], text_columns: Collection[str] = ()) -> pd.DataFrame:
    """Read ``columns`` of a CSV or Parquet file, CSV ``text_columns`` as strings, or raise TransactionSchemaError.

    A CSV row with more fields than the header is an error: cut short, its values would sit under the
    wrong columns.
    """
    if not is_csv_file(path):
        return pd.read_parquet(path, columns=list(columns))
    # pandas checks each row against the width of the first data row, but makes an index of that row's
    # own surplus fields; read without a header, the first data row is checked against the header too.
    header = _read_csv(path, header=None, nrows=2, dtype=str, keep_default_na=False).iloc[0].tolist()
    text = [c for c in text_columns if c in columns]
    # Text columns are read as written: pandas' default missing markers would turn the ids "NA", "None" or
    # "NULL" into nulls. An empty field stays "" for the validators to treat (and report) as missing.
    missing_markers = {c: _DEFAULT_NA_MARKERS for c in header if c not in text}
    # Every column is read, not only ``columns``: with ``usecols`` pandas drops a row's surplus fields
    # without a word. The other columns live only until the selection below.
    frame = _read_csv(
        path, dtype=dict.fromkeys(text, "string"), keep_default_na=False, na_values=missing_markers
    )
    return frame[list(columns)]


def validate_transactions(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return ``frame`` with exactly the canonical columns and dtypes, or raise TransactionSchemaError.

    Required columns must be present; optional ones are added as null strings when absent; other columns
    are dropped. Ids are stripped text (integral floats such as ``40117.0`` become ``"40117"``, and so
    does customer id text written from one, ``"40117.0"``; empty becomes null). Order and item ids must
    not be null; timestamps must parse (time zones are converted to naive UTC); quantities and unit
    prices must be finite numbers. The index is reset.
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
        ids = as_id_strings(frame[column])
        if column == schema.CUSTOMER_ID:
            # the column that may hold gaps (guests), so the one a CSV written by pandas carries as floats
            ids = without_float_suffix(ids)
        else:
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


def as_id_strings(values: pd.Series) -> pd.Series:
    """Ids as stripped text: integral floats (``40117.0``, as a CSV column with gaps reads) become
    ``"40117"``, other floats keep their text (``"12.5"``); empty text becomes missing."""
    text = values.astype("string")
    if pd.api.types.is_float_dtype(values.dtype):
        # Value by value: one fractional id must not leave every whole one as "40117.0".
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(array) & (np.mod(array, 1) == 0)
        fits_int64 = whole & (np.abs(array) < _FLOAT_EXACT_LIMIT)
        text[fits_int64] = array[fits_int64].astype(np.int64).astype(str)
        # Past 2**63 astype(np.int64) wraps around (1e19 becomes -9223372036854775808); int() does not.
        huge = whole & ~fits_int64
        text[huge] = [str(int(value)) for value in array[huge]]
    text = text.str.strip()
    return text.mask(text == "")


def without_float_suffix(ids: pd.Series) -> pd.Series:
    """Text ids as a float column writes them (``"40117.0"``, what pandas writes to CSV for an integer
    column with gaps) as the integers they are, so that a CSV and a Parquet copy of one file agree."""
    return ids.str.replace(r"^(\d+)\.0*$", r"\1", regex=True)


def _as_timestamps(values: pd.Series, source: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype):
        # pandas takes any number for nanoseconds since 1970; an all-null column falls through and is
        # reported as missing below.
        _raise_if_bad(source, schema.TIMESTAMP, values.notna().to_numpy(), values, _NUMERIC_TIMESTAMP)
    problem = "missing or unparseable timestamp"
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = values
    else:
        parsed, fmt = _parse_in_one_format(values, source)
        parsed = parsed.dt.tz_localize(None)
        if fmt is not None:
            problem += f" (the column's format, inferred from its first date, is {fmt!r})"
    bad = parsed.isna() | (parsed < _NS_MIN) | (parsed > _NS_MAX)
    _raise_if_bad(source, schema.TIMESTAMP, bad.to_numpy(), values, problem)
    return parsed.astype(schema.DTYPES[schema.TIMESTAMP])


def _parse_in_one_format(values: pd.Series, source: str) -> tuple[pd.Series, str | None]:
    """Parse text timestamps with one format for the whole column; return them (UTC) and the format.

    Value-by-value parsing (pandas' ``format="mixed"``) reads ``01/02/2024`` month-first and
    ``13/02/2024`` day-first in one column without a word, so it is never used on text. The format is
    inferred from the first value that has one; where day and month could swap, the order that fits more
    rows wins (month-first on a tie, as pandas reads), and a column that needs both orders is an error.
    ISO 8601 counts as one format: dates, datetimes and offsets may sit side by side.
    """
    text = values.dropna()
    if not all(isinstance(v, str) for v in text):
        # e.g. datetime objects in an object column: there is no text whose format could be mixed up.
        return _to_utc(values, None), None
    fmt = _infer_timestamp_format(text)
    if fmt is None:  # nothing looks like a date: every row is reported
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]"), None
    parsed = _to_utc(values, fmt)
    swapped_fmt = _day_month_swapped(fmt)
    failed = parsed.isna() & values.notna()
    if swapped_fmt is None or not failed.any():
        return _with_dates_alone(values, parsed, fmt), fmt
    swapped = _to_utc(values, swapped_fmt)
    if (swapped.isna() & values.notna()).sum() < failed.sum():
        fmt, swapped_fmt, parsed, swapped = swapped_fmt, fmt, swapped, parsed
        failed = parsed.isna() & values.notna()
    problem = (
        f"dates in both day/month orders: {fmt!r} fits most rows, {swapped_fmt!r} only these; write every "
        "date in one format (ISO 8601, e.g. '2024-01-02 10:30:00', cannot be misread)"
    )
    _raise_if_bad(source, schema.TIMESTAMP, (failed & swapped.notna()).to_numpy(), values, problem)
    return _with_dates_alone(values, parsed, fmt), fmt


def _with_dates_alone(values: pd.Series, parsed: pd.Series, fmt: str) -> pd.Series:
    """``parsed`` with the rows that hold only the date of ``fmt`` (``3/4/2021`` in a ``3/4/2021 10:15``
    column, as spreadsheets write midnight) read in the same day/month order."""
    date_part = fmt.split(" ")[0]
    failed = parsed.isna() & values.notna()
    if date_part == fmt or not failed.any():
        return parsed
    parsed = parsed.copy()
    parsed[failed] = _to_utc(values[failed], date_part)
    return parsed


def _infer_timestamp_format(text: pd.Series) -> str | None:
    from pandas.tseries.api import guess_datetime_format

    for value in text.head(_FORMAT_PROBES):
        with warnings.catch_warnings():
            # pandas warns when its guess is day-first; the guess is checked against every row below
            warnings.simplefilter("ignore", UserWarning)
            fmt = guess_datetime_format(value.strip())
        if fmt is not None:
            return "ISO8601" if fmt.startswith("%Y-%m-%d") else fmt
    return None


def _day_month_swapped(fmt: str) -> str | None:
    """``fmt`` with day and month swapped: a guess from ``01/02/2024`` cannot tell the two apart."""
    if "%d" not in fmt or "%m" not in fmt:
        return None
    return fmt.replace("%d", "%_").replace("%m", "%d").replace("%_", "%m")


def _to_utc(values: pd.Series, fmt: str | None) -> pd.Series:
    with warnings.catch_warnings():
        # Failures are reported with their rows; pandas' "could not infer format" adds nothing.
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(values, errors="coerce", utc=True, format=fmt)


def _as_numbers(values: pd.Series, source: str, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    array = np.asarray(numbers.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    _raise_if_bad(source, column, ~np.isfinite(array), values, "missing or non-numeric value")
    return pd.Series(array, index=values.index, dtype=schema.DTYPES[column])


def is_csv_file(path: Path) -> bool:
    """Whether ``path`` names a CSV file (possibly compressed) rather than Parquet, by the suffixes the
    loaders read; any other name is a TransactionSchemaError."""
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return True
    if name.endswith(_PARQUET_SUFFIXES):
        return False
    suffixes = list(_CSV_SUFFIXES + _PARQUET_SUFFIXES)
    problem = f"unsupported file type; expected a name ending in one of {suffixes} (save spreadsheets as CSV)"
    raise TransactionSchemaError(str(path), None, problem)


def _read_csv(path: Path, **options: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError as exc:
        raise TransactionSchemaError(
            str(path), None, "the file is empty; a CSV file starts with a header line naming its columns"
        ) from exc
    except UnicodeDecodeError as exc:
        raise _not_utf8_error(path) from exc
    except pd.errors.ParserError as exc:
        raise _long_rows_error(path, exc) from exc


def _long_rows_error(path: Path, cause: Exception) -> TransactionSchemaError:
    try:
        width, count, first = _rows_longer_than_header(path)
    except csv.Error:  # e.g. a field past the csv module's size limit: fall back to pandas' words
        width, count, first = 0, 0, []
    if not count:
        return TransactionSchemaError(str(path), None, f"cannot be read as CSV ({cause})")
    problem = (
        f"{count} row(s) with more fields than the header's {width} (a field that holds a comma must be quoted): "
        f"{[len(record) for _, _, record in first]} fields on lines {[line for _, line, _ in first]} of the file"
    )
    return TransactionSchemaError(
        str(path), None, problem, [row for row, _, _ in first], [record for _, _, record in first]
    )


def _rows_longer_than_header(path: Path) -> tuple[int, int, list[tuple[int, int, list[str]]]]:
    """Return the header's width, how many rows are longer, and the first few as (data row, line, fields).

    pandas' error names a line number that counts neither data rows nor file lines, hence this scan.
    """
    count = 0
    first: list[tuple[int, int, list[str]]] = []
    # Replacing undecodable bytes is harmless here: only the field counts matter.
    with open_bytes(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
        reader = csv.reader(text)
        width = len(next(reader, []))
        data_row = 0
        for record in reader:
            if not record:  # a blank line, which pandas skips: not a data row
                continue
            if len(record) > width:
                count += 1
                if len(first) < _MAX_REPORTED_ROWS:
                    first.append((data_row, reader.line_num, record))
            data_row += 1
    return width, count, first


def _not_utf8_error(path: Path) -> TransactionSchemaError:
    compressed = " of the decompressed data" if path.suffix.lower() in (*_DECOMPRESSORS, ".zip") else ""
    found = first_non_utf8_byte(path)
    where = "" if found is None else " byte 0x{:02x} at byte offset {} (line {}){}".format(*found, compressed)
    return TransactionSchemaError(str(path), None, f"not UTF-8 text:{where}; save the file as UTF-8")


def first_non_utf8_byte(path: Path) -> tuple[int, int, int] | None:
    """Return the value, 0-based offset and 1-based line of the first byte that breaks UTF-8.

    pandas' own offset counts from the start of a field, which does not help anyone find the byte.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = newlines = 0
    with open_bytes(path) as raw:
        while True:
            chunk = raw.read(1 << 20)
            pending = decoder.getstate()[0]  # the unfinished character the last chunk ended with
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line = newlines + exc.object[: exc.start].count(b"\n") + 1
                return exc.object[exc.start], consumed - len(pending) + exc.start, line
            if not chunk:
                return None
            consumed += len(chunk)
            newlines += chunk.count(b"\n")


@contextmanager
def open_bytes(path: Path) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading, decompressed by suffix as pandas does."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as member:
            yield member
    else:
        with _DECOMPRESSORS.get(suffix, open)(path, "rb") as raw:
            yield raw
