"""Loaders for the CDNOW data set of Fader, Hardie and Lee (as distributed with ``lifetimes``).

Two shapes exist: the raw purchase logs (``CDNOW_master.txt``, all 23,570 customers, and
``CDNOW_sample.txt``, the 1/10 sample with an extra sample-id column) and the published 39-week
calibration summary of the sample (``cdnow_customers_summary_with_transactions.csv``: ``ID,x,t_x,T,zbar``
in weeks). The logs become canonical transactions; the summary becomes the frame the customer models fit.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data import schema
from recsys.data.loaders import first_non_utf8_byte, open_bytes

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_SUMMARY_SOURCE = {"x": "frequency", "t_x": "recency", "T": "T", "zbar": "monetary_value"}


class CdnowFormatError(ValueError):
    """A CDNOW file does not have the published layout; the message names the file and line."""


def load_cdnow_summary(path: str | Path) -> pd.DataFrame:
    """Read the calibration summary ``ID,x,t_x,T,zbar`` into ``frequency, recency, T, monetary_value``.

    The index is the integer sample ``ID``. Times are in weeks, as published.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as exc:
        raise _not_utf8_error(path, exc) from exc
    except pd.errors.ParserError as exc:
        raise CdnowFormatError(f"{path}: not a readable CSV ({exc})") from exc
    expected = ["ID", *_SUMMARY_SOURCE]
    if list(raw.columns) != expected:
        raise CdnowFormatError(f"{path}: header is {list(raw.columns)}, expected {expected}")
    numbers = {}
    for column in raw.columns:
        values = pd.to_numeric(raw[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            line = _summary_line_numbers(path)[bad[0]]
            raise CdnowFormatError(f"{path}, line {line}: {column}={raw[column].iloc[bad[0]]!r} is not a number")
        numbers[column] = values.to_numpy()
    frame = pd.DataFrame(
        {target: numbers[source].astype(np.float64) for source, target in _SUMMARY_SOURCE.items()},
        index=pd.Index(numbers["ID"].astype(np.int64), name="ID"),
    )
    _check_summary(frame, path)
    return frame


def _check_summary(frame: pd.DataFrame, path: Path) -> None:
    problems = {
        "frequency is negative or not a whole number": (frame.frequency < 0)
        | (frame.frequency != np.round(frame.frequency)),
        "recency is negative or exceeds T": (frame.recency < 0) | (frame.recency > frame["T"] + 1e-9),
        "monetary_value is negative": frame.monetary_value < 0,
    }
    for reason, mask in problems.items():
        rows = np.flatnonzero(mask.to_numpy())
        if rows.size:
            raise CdnowFormatError(f"{path}, line {_summary_line_numbers(path)[rows[0]]}: {reason}")


def _summary_line_numbers(path: Path) -> list[int]:
    """The 1-based file line of each data row, counted as pandas reads the file: lines that hold only
    blanks are skipped, and the first other line is the header."""
    with open_bytes(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as text:
        filled = [number for number, line in enumerate(text, start=1) if line.strip()]
    return filled[1:]


def _not_utf8_error(path: Path, cause: UnicodeDecodeError) -> CdnowFormatError:
    found = first_non_utf8_byte(path)
    if found is None:
        return CdnowFormatError(f"{path}: not UTF-8 text ({cause})")
    byte, offset, line = found
    return CdnowFormatError(f"{path}, line {line}: byte 0x{byte:02x} at byte offset {offset} is not UTF-8 text")


def _ascii_lines(path: Path) -> list[str]:
    """The lines of a CDNOW log, which is ASCII; a UTF-8 byte-order mark at the start is allowed."""
    data = path.read_bytes()
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("ascii").splitlines()
    except UnicodeDecodeError as exc:
        offset = len(data) - len(body) + exc.start
        line = data[:offset].count(b"\n") + 1
        raise CdnowFormatError(
            f"{path}, line {line}: byte 0x{data[offset]:02x} at byte offset {offset} is not ASCII text"
        ) from None


def load_cdnow_transactions(path: str | Path) -> pd.DataFrame:
    """Read ``CDNOW_master.txt`` or ``CDNOW_sample.txt`` into the canonical transactions schema.

    One line is one purchase: ``customer_id [sample_id] YYYYMMDD cds dollars`` (the master file starts
    with a header line). ``quantity`` is the number of CDs and ``unit_price`` the dollars per CD, so that
    ``quantity * unit_price`` gives back the amount spent. Purchases of one customer on one date share
    an ``order_id`` (``<customer>-<YYYYMMDD>``): the logs carry no order number, and the published
    summaries count purchase days. CDNOW records no product, so ``item_id`` is null.
    """
    path = Path(path)
    lines = _ascii_lines(path)
    rows: list[tuple[str, str, int, float]] = []
    line_numbers: list[int] = []
    width = None
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if number == 1 and not fields[0].isdigit():
            continue  # the master file's header
        if width is None:
            width = len(fields)
            if width not in (4, 5):
                raise CdnowFormatError(
                    f"{path}, line {number}: {width} fields; expected 4 (master) or 5 (sample): {line!r}"
                )
        elif len(fields) != width:
            raise CdnowFormatError(f"{path}, line {number}: {len(fields)} fields, expected {width}: {line!r}")
        customer, date, cds, dollars = fields[0], fields[-3], fields[-2], fields[-1]
        try:
            cds_value = int(cds)
            dollar_value = float(dollars)
        except ValueError:
            raise CdnowFormatError(f"{path}, line {number}: cds or dollars is not a number: {line!r}") from None
        if not (customer.isdigit() and len(date) == 8 and date.isdigit()):
            raise CdnowFormatError(f"{path}, line {number}: bad customer id or YYYYMMDD date: {line!r}")
        if cds_value < 0 or not np.isfinite(dollar_value) or dollar_value < 0:
            raise CdnowFormatError(f"{path}, line {number}: negative or non-finite amounts: {line!r}")
        if cds_value == 0 and dollar_value > 0:
            # No unit price makes 0 CDs cost money; keeping the row would lose or invent spend.
            raise CdnowFormatError(f"{path}, line {number}: {dollar_value} dollars for 0 CDs: {line!r}")
        rows.append((customer, date, cds_value, dollar_value))
        line_numbers.append(number)
    if not rows:
        raise CdnowFormatError(f"{path}: no purchase lines")

    customers, dates, cds_values, dollar_values = zip(*rows, strict=True)
    cds_array = np.asarray(cds_values, dtype=np.float64)
    dollars_array = np.asarray(dollar_values, dtype=np.float64)
    timestamps = pd.to_datetime(pd.Series(dates), format="%Y%m%d", errors="coerce")
    bad = np.flatnonzero(timestamps.isna().to_numpy())
    if bad.size:
        raise CdnowFormatError(f"{path}, line {line_numbers[bad[0]]}: {dates[bad[0]]!r} is not a calendar date")
    unit_price = np.divide(dollars_array, cds_array, out=np.zeros_like(dollars_array), where=cds_array > 0)
    customer_ids = pd.Series(customers, dtype="string")
    frame = pd.DataFrame(
        {
            schema.ORDER_ID: customer_ids + "-" + pd.Series(dates, dtype="string"),
            schema.CUSTOMER_ID: customer_ids,
            schema.ITEM_ID: pd.Series(pd.NA, index=customer_ids.index, dtype="string"),
            schema.TIMESTAMP: timestamps.astype("datetime64[ns]"),
            schema.QUANTITY: cds_array,
            schema.UNIT_PRICE: unit_price,
        }
    )
    return frame
