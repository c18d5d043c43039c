"""Purchase summaries: hand-built histories and the published CDNOW 39-week calibration summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.customers.features import customer_features
from recsys.data import schema
from recsys.data.cdnow import CdnowFormatError, load_cdnow_summary, load_cdnow_transactions
from recsys.models.customers.rfm_summary import SUMMARY_COLUMNS, summarize_purchases


def _transactions(rows):
    customers, times, quantities, prices = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            schema.CUSTOMER_ID: pd.Series(customers, dtype="string"),
            schema.TIMESTAMP: pd.to_datetime(list(times)),
            schema.QUANTITY: np.asarray(quantities, dtype=float),
            schema.UNIT_PRICE: np.asarray(prices, dtype=float),
        }
    )


HISTORY = _transactions(
    [
        ("a", "2024-01-01 09:00", 1, 10.0),
        ("a", "2024-01-01 17:00", 2, 5.0),  # same day: one transaction of 20
        ("a", "2024-01-04 12:00", 1, 30.0),
        ("a", "2024-01-11 08:00", 4, 10.0),
        ("a", "2024-01-13 00:00", 1, 999.0),  # at the cutoff: not yet observed
        ("b", "2024-01-08 10:00", 3, 2.0),
        ("c", "2024-01-20 10:00", 1, 1.0),  # after the cutoff: unknown customer
    ]
)


def test_hand_built_history_in_days():
    summary = summarize_purchases(HISTORY, "2024-01-13")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert list(summary.index) == ["a", "b"]
    # a: purchase days 1, 4, 11 Jan; observed through 12 Jan.
    assert summary.loc["a"].tolist() == [2.0, 10.0, 11.0, (30.0 + 40.0) / 2]
    assert summary.loc["b"].tolist() == [0.0, 0.0, 4.0, 0.0]


def test_weeks_divide_days_by_seven_and_intraday_cutoff_observes_that_day():
    weeks = summarize_purchases(HISTORY, "2024-01-13", time_unit="W")
    days = summarize_purchases(HISTORY, "2024-01-13", time_unit="D")
    np.testing.assert_allclose(weeks[["recency", "T"]] * 7, days[["recency", "T"]])
    midday = summarize_purchases(HISTORY, "2024-01-11 09:00")
    assert midday.loc["a"].tolist() == [2.0, 10.0, 10.0, 35.0]


def test_first_date_starts_the_window():
    summary = summarize_purchases(HISTORY, "2024-01-13", first_date="2024-01-02")
    assert summary.loc["a"].tolist() == [1.0, 7.0, 8.0, 40.0]


def test_empty_window_and_bad_arguments():
    empty = summarize_purchases(HISTORY, "2023-01-01")
    assert empty.empty and list(empty.columns) == list(SUMMARY_COLUMNS)
    with pytest.raises(ValueError, match="time_unit"):
        summarize_purchases(HISTORY, "2024-01-13", time_unit="M")
    with pytest.raises(ValueError, match="lack columns"):
        summarize_purchases(HISTORY.drop(columns=[schema.UNIT_PRICE]), "2024-01-13")
    with pytest.raises(ValueError, match="first_date"):
        summarize_purchases(HISTORY, "2024-01-13", first_date="2024-02-01")


def test_loader_names_file_and_line_of_malformed_input(tmp_path):
    # invented rows in the sample file's layout (customer, sample id, date, CDs, dollars)
    good = " 00731 0042 19970305  2   31.50\n 00731 0042 19970322  0    0.00\n"
    path = tmp_path / "sample.txt"
    path.write_text(good)
    frame = load_cdnow_transactions(path)
    assert frame[schema.UNIT_PRICE].tolist() == [15.75, 0.0]
    assert frame[schema.ORDER_ID].tolist() == ["00731-19970305", "00731-19970322"]
    for bad_line, message in [
        (" 00731 0042 19970332  2   31.50\n", "line 3: '19970332' is not a calendar date"),
        (" 00731 0042 19970305  x   31.50\n", "line 3: cds or dollars"),
        (" 00731 19970305  2   31.50\n", "line 3: 4 fields, expected 5"),
        (" 00731 0042 19970305  0   31.50\n", "line 3: 31.5 dollars for 0 CDs"),
    ]:
        path.write_text(good + bad_line)
        with pytest.raises(CdnowFormatError, match=f"{path.name}, {message}"):
            load_cdnow_transactions(path)
    summary = tmp_path / "summary.csv"
    summary.write_text("ID,x,t_x,T,zbar\n1,3,24.14,36.57,18.20\n2,1,oops,36.57,9.95\n")
    with pytest.raises(CdnowFormatError, match="summary.csv, line 3: t_x='oops'"):
        load_cdnow_summary(summary)


@pytest.mark.data
def test_cdnow_sample_reproduces_published_calibration_summary(cdnow_dir):
    transactions = load_cdnow_transactions(cdnow_dir / "CDNOW_sample.txt")
    assert len(transactions) == 6919
    # The published summary is keyed by the sample id, the file's second column.
    sample_ids = {}
    for line in (cdnow_dir / "CDNOW_sample.txt").read_text().splitlines():
        fields = line.split()
        sample_ids.setdefault(fields[0], int(fields[1]))
    summary = summarize_purchases(transactions, "1997-10-01", time_unit="W")
    summary.index = summary.index.map(sample_ids)
    summary = summary.sort_index()
    published = load_cdnow_summary(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")
    assert summary.index.tolist() == published.index.tolist()
    assert (summary.frequency == published.frequency).all()
    # Published to 2 decimals; zbar's half-cents were rounded either way.
    for column in ("recency", "T", "monetary_value"):
        np.testing.assert_array_less(np.abs(summary[column] - published[column]), 0.005 + 1e-9)


@pytest.mark.parametrize("dtype", ["int64", "float64", "string"])
def test_customer_ids_are_text_as_in_customer_features(dtype):
    history = HISTORY.assign(**{schema.CUSTOMER_ID: pd.Series([7, 7, 7, 7, 7, 12, 30]).astype(dtype)},
                             **{schema.ORDER_ID: [f"o{i}" for i in range(len(HISTORY))], schema.ITEM_ID: "x"})
    summary = summarize_purchases(history, "2024-01-13")
    features = customer_features(history, "2024-01-13")
    assert summary.index.equals(features.index)
    assert summary.iloc[-1].tolist() == [2.0, 10.0, 11.0, (30.0 + 40.0) / 2]  # customer 7 sorts after "12"
    if dtype == "int64":
        assert summary.index.tolist() == ["12", "7"]
