from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.loaders import TransactionSchemaError, as_id_strings, load_transactions, validate_transactions


def _frame(**overrides) -> pd.DataFrame:
    data = {
        "order_id": ["1001", "1001", "1002", "1003"],
        "customer_id": ["40117", "40117", None, "00042"],
        "item_id": ["90210A", "90311", "90412", "POST"],
        "timestamp": ["2011-01-04 10:00", "2011-01-04 10:00", "2011-01-05 09:30", "2011-01-06 12:00"],
        "quantity": [6, 6, 1, 2],
        "unit_price": [2.55, 3.39, 12.75, 18.0],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_valid_frame_gets_exact_canonical_columns_and_dtypes():
    frame = _frame(extra=[1, 2, 3, 4], country=["UK", "UK", None, "France"])
    out = validate_transactions(frame, source="toy")
    assert list(out.columns) == list(schema.REQUIRED_COLUMNS + schema.OPTIONAL_COLUMNS)
    assert {c: str(t) for c, t in out.dtypes.items()} == schema.DTYPES
    assert out[schema.CUSTOMER_ID].tolist() == ["40117", "40117", pd.NA, "00042"]
    assert out[schema.COUNTRY].tolist() == ["UK", "UK", pd.NA, "France"]
    assert out[schema.ITEM_NAME].isna().all() and out[schema.CATEGORY].isna().all()
    assert out[schema.TIMESTAMP].iloc[2] == pd.Timestamp("2011-01-05 09:30")
    assert out[schema.QUANTITY].tolist() == [6.0, 6.0, 1.0, 2.0]


def test_integral_float_ids_lose_the_decimal_and_blank_customer_is_null():
    frame = _frame(customer_id=[40117.0, np.nan, 40502.0, 40117.0], order_id=[" 1001 ", "1001", "1002", "1003"])
    out = validate_transactions(frame, source="toy")
    assert out[schema.CUSTOMER_ID].tolist() == ["40117", pd.NA, "40502", "40117"]
    assert out[schema.ORDER_ID].tolist() == ["1001", "1001", "1002", "1003"]
    blank = validate_transactions(_frame(customer_id=["", " ", "1", None]), source="toy")
    assert blank[schema.CUSTOMER_ID].isna().tolist() == [True, True, False, True]


def test_a_csv_and_a_parquet_copy_of_one_file_give_the_same_customer_ids(tmp_path):
    # pandas writes an integer id column with a gap as floats: "11934.0" in the CSV, a float in Parquet
    frame = _frame(customer_id=[11934.0, np.nan, 42.0, 11934.0])
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    from_csv = load_transactions(tmp_path / "t.csv")[schema.CUSTOMER_ID].tolist()
    assert from_csv == load_transactions(tmp_path / "t.parquet")[schema.CUSTOMER_ID].tolist()
    assert from_csv == ["11934", pd.NA, "42", "11934"]
    # text that is not an integral float keeps its spelling
    kept = validate_transactions(_frame(customer_id=["00042", "12.5", "7.", "A1.0"]), source="toy")
    assert kept[schema.CUSTOMER_ID].tolist() == ["00042", "12.5", "7", "A1.0"]


def test_float_ids_are_converted_one_by_one():
    # One fractional id leaves the whole ones alone; missing stays missing.
    out = as_id_strings(pd.Series([40117.0, 12.5, np.nan, -3.0]))
    assert out.tolist() == ["40117", "12.5", pd.NA, "-3"]


def test_time_zones_become_naive_utc_and_mixed_formats_parse():
    out = validate_transactions(
        _frame(timestamp=["2011-01-04T10:00:00+02:00", "2011-01-04 08:00", "2011-01-05", "2011-01-06 12:00"]),
        source="toy",
    )
    assert out[schema.TIMESTAMP].tolist()[:3] == [
        pd.Timestamp("2011-01-04 08:00"),
        pd.Timestamp("2011-01-04 08:00"),
        pd.Timestamp("2011-01-05"),
    ]


def test_missing_required_column_lists_what_is_present():
    frame = _frame().drop(columns=["timestamp", "unit_price"])
    with pytest.raises(TransactionSchemaError) as caught:
        validate_transactions(frame, source="orders.csv")
    err = caught.value
    assert (err.source, err.column, err.rows, err.values) == ("orders.csv", "timestamp", (), ())
    message = str(err)
    assert "orders.csv" in message and "'unit_price'" in message
    assert "present: ['order_id', 'customer_id', 'item_id', 'quantity']" in message


@pytest.mark.parametrize(
    ("column", "values", "rows", "bad"),
    [
        ("timestamp", ["2011-01-04 10:00", "yesterday", "2011-01-05", None], (1, 3), ("yesterday", None)),
        ("quantity", [1, "six", 2, "1,5"], (1, 3), ("six", "1,5")),
        ("unit_price", [1.0, 2.0, float("inf"), "n/a"], (2, 3), (float("inf"), "n/a")),
        ("order_id", ["1", None, "3", "4"], (1,), (None,)),
        ("item_id", ["a", "b", "  ", "d"], (2,), ("  ",)),
    ],
)
def test_bad_values_name_file_column_rows_and_values(column, values, rows, bad):
    with pytest.raises(TransactionSchemaError) as caught:
        validate_transactions(_frame(**{column: values}), source="orders.csv")
    err = caught.value
    assert isinstance(err, ValueError)
    assert (err.source, err.column, err.rows, err.values) == ("orders.csv", column, rows, bad)
    message = str(err)
    assert "orders.csv" in message and repr(column) in message and str(list(rows)) in message
    assert repr(bad[0]) in message


def test_only_first_five_bad_rows_are_reported():
    frame = pd.concat([_frame(), _frame()], ignore_index=True).assign(timestamp="bad")
    with pytest.raises(TransactionSchemaError) as caught:
        validate_transactions(frame, source="x")
    assert caught.value.rows == (0, 1, 2, 3, 4)
    assert "8 row(s)" in str(caught.value)


def test_null_customer_is_not_an_error():
    out = validate_transactions(_frame(customer_id=[None] * 4), source="toy")
    assert out[schema.CUSTOMER_ID].isna().all()


def test_rows_are_positions_even_with_a_non_default_index():
    frame = _frame(quantity=[1, 2, "x", 4]).set_axis([10, 20, 30, 40])
    with pytest.raises(TransactionSchemaError) as caught:
        validate_transactions(frame, source="toy")
    assert caught.value.rows == (2,)


def test_load_csv_with_renaming_keeps_ids_as_text(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "Invoice,Customer,Sku,When,Qty,Price,Note\n"
        "0001,00042,0123,2011-01-04 10:00,2,1.5,x\n"
        "0002,,0124,2011-01-05 11:00,1,2.0,y\n"
    )
    columns = {
        "Invoice": "order_id",
        "Customer": "customer_id",
        "Sku": "item_id",
        "When": "timestamp",
        "Qty": "quantity",
        "Price": "unit_price",
    }
    out = load_transactions(path, columns)
    assert out[schema.ORDER_ID].tolist() == ["0001", "0002"]
    assert out[schema.CUSTOMER_ID].tolist() == ["00042", pd.NA]
    assert out[schema.ITEM_ID].tolist() == ["0123", "0124"]
    assert {c: str(t) for c, t in out.dtypes.items()} == schema.DTYPES


def test_load_parquet_round_trip(tmp_path):
    path = tmp_path / "orders.parquet"
    validate_transactions(_frame(), source="toy").to_parquet(path)
    out = load_transactions(path)
    pd.testing.assert_frame_equal(out, validate_transactions(_frame(), source="toy"))


def test_load_reports_the_file_in_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("order_id,customer_id,item_id,timestamp,quantity\n1,2,3,2011-01-01,x\n")
    with pytest.raises(TransactionSchemaError, match="bad.csv.*unit_price"):
        load_transactions(path)
    path.write_text("order_id,customer_id,item_id,timestamp,quantity,unit_price\n1,2,3,2011-01-01,x,1\n")
    with pytest.raises(TransactionSchemaError, match="bad.csv.*'quantity'.*rows \\[0\\]"):
        load_transactions(path)


def test_missing_column_lists_every_column_of_the_file(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,Customer,item_id,timestamp,quantity,unit_price\n1,2,3,2011-01-01,1,1\n")
    with pytest.raises(TransactionSchemaError) as caught:
        load_transactions(path)
    assert caught.value.column == "customer_id"
    assert "'Customer'" in str(caught.value)
    frame = pd.DataFrame({"Customer": ["7"]}).join(_frame().drop(columns="customer_id").iloc[:1])
    frame.to_parquet(tmp_path / "orders.parquet")
    with pytest.raises(TransactionSchemaError, match="'Customer'"):
        load_transactions(tmp_path / "orders.parquet")
    renamed = load_transactions(tmp_path / "orders.parquet", {"Customer": "customer_id"})
    assert renamed["customer_id"].tolist() == ["7"]


def test_unsupported_suffix_and_unknown_target_name(tmp_path):
    with pytest.raises(ValueError, match="unsupported file type"):
        load_transactions(tmp_path / "orders.xlsx")
    with pytest.raises(ValueError, match="unknown canonical name"):
        load_transactions(tmp_path / "orders.csv", {"Qty": "qty"})


CANONICAL_HEADER = "order_id,customer_id,item_id,timestamp,quantity,unit_price"


@pytest.mark.parametrize(
    ("lines", "rows", "line_numbers", "widths"),
    [
        # An unquoted comma in a name; with usecols pandas cut such rows short and shifted nothing back.
        (
            [
                f"{CANONICAL_HEADER},item_name",
                "1,a,x,2024-01-01,1,2.50,Mug",
                "2,b,SOFA,2024-01-02,1,1,234.50,Sofa",
                "3,b,y,2024-01-02,1,3.00,Mug, Blue",
            ],
            (1, 2),
            [3, 4],
            [8, 8],
        ),
        # A longer first data row: pandas makes an index of its surplus fields instead of failing.
        ([CANONICAL_HEADER, "1,a,x,2024-01-01,1,2,", "", "2,b,y,2024-01-02,1,2,9"], (0, 1), [2, 4], [7, 7]),
    ],
)
def test_csv_row_longer_than_the_header_names_rows_lines_and_field_counts(tmp_path, lines, rows, line_numbers, widths):
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TransactionSchemaError) as caught:
        load_transactions(path)
    err = caught.value
    assert (err.source, err.column, err.rows) == (str(path), None, rows)
    assert err.values[-1] == lines[line_numbers[-1] - 1].split(",")
    width = len(lines[0].split(","))
    assert f"more fields than the header's {width}" in str(err)
    assert f"{widths} fields on lines {line_numbers} of the file" in str(err)


def test_numeric_timestamps_are_rejected_not_read_as_nanoseconds(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(f"{CANONICAL_HEADER}\n1,a,x,1704067200,1,2\n2,b,y,20240102,1,2\n")
    with pytest.raises(TransactionSchemaError) as caught:
        load_transactions(path)
    err = caught.value
    assert (err.column, err.rows, err.values) == ("timestamp", (0, 1), (1704067200, 20240102))
    assert "2 row(s) with a number instead of a date" in str(err) and "ISO 8601" in str(err)
    # An empty column reads as float too; it is reported as missing, not as numbers.
    path.write_text(f"{CANONICAL_HEADER}\n1,a,x,,1,2\n")
    with pytest.raises(TransactionSchemaError, match="missing or unparseable timestamp"):
        load_transactions(path)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("orders.txt", b"order_id\n1\n", "unsupported file type; expected a name ending in one of ['.csv'"),
        ("orders.csv", b"", "the file is empty"),
        ("orders.parquet", b"", "not a readable Parquet file"),
        (
            "orders.csv",
            f"{CANONICAL_HEADER}\n1,a,x,2024-01-01,1,2\n2,b,y,2024-01-01,1,2.5\xa3\n".encode("latin-1"),
            "not UTF-8 text: byte 0xa3 at byte offset 102 (line 3); save the file as UTF-8",
        ),
    ],
)
def test_unreadable_files_name_the_file_and_the_problem(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TransactionSchemaError) as caught:
        load_transactions(path)
    assert (caught.value.source, caught.value.column) == (str(path), None)
    assert str(caught.value).startswith(f"{path}: {problem}")


def test_day_first_slash_dates_are_read_day_first_in_every_row(tmp_path):
    # 01/02 alone could be either order; 13/02 can only be day-first, so the whole column is.
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,customer_id,item_id,timestamp,quantity,unit_price\n"
        "1,c1,a,01/02/2024,1,1.0\n"
        "2,c1,b,13/02/2024,1,1.0\n"
    )
    out = load_transactions(path)
    assert out[schema.TIMESTAMP].tolist() == [pd.Timestamp("2024-02-01"), pd.Timestamp("2024-02-13")]


def test_a_date_without_its_time_is_read_in_the_columns_day_month_order():
    # spreadsheets write midnight as the date alone, next to dates with a time
    out = validate_transactions(_frame(timestamp=["13/1/2021 10:15", "12/2/2021", "14/1/2021 9:00", "1/3/2021"]),
                                source="toy")
    assert out[schema.TIMESTAMP].tolist() == [pd.Timestamp("2021-01-13 10:15"), pd.Timestamp("2021-02-12"),
                                              pd.Timestamp("2021-01-14 09:00"), pd.Timestamp("2021-03-01")]


def test_month_first_slash_dates_stay_month_first():
    stamps = ["3/4/2021 10:15", "3/4/2021 10:15", "1/13/2022 9:00", "2/1/2022 10:00"]
    out = validate_transactions(_frame(timestamp=stamps), source="toy")
    assert out[schema.TIMESTAMP].tolist()[2:] == [pd.Timestamp("2022-01-13 09:00"), pd.Timestamp("2022-02-01 10:00")]


def test_dates_in_both_day_month_orders_are_an_error_naming_the_rows():
    stamps = ["01/02/2024", "13/02/2024", "02/13/2024", "03/02/2024"]
    with pytest.raises(TransactionSchemaError, match="both day/month orders") as caught:
        validate_transactions(_frame(timestamp=stamps), source="orders.csv")
    assert (caught.value.column, caught.value.rows, caught.value.values) == ("timestamp", (1,), ("13/02/2024",))


def test_a_date_outside_the_columns_format_is_an_error_naming_the_format():
    stamps = ["2011-01-04 10:00", "01/05/2011", "2011-01-05", "2011-01-06T12:00:00+01:00"]
    with pytest.raises(TransactionSchemaError, match="'ISO8601'") as caught:
        validate_transactions(_frame(timestamp=stamps), source="orders.csv")
    assert (caught.value.rows, caught.value.values) == ((1,), ("01/05/2011",))


def test_id_text_that_pandas_reads_as_missing_is_kept_as_written(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,customer_id,item_id,timestamp,quantity,unit_price\n"
        "NA,None,NA,2024-01-02,1,1.0\n"
        "NULL,nan,N/A,2024-01-02,1,1.0\n"
        "3,,null,2024-01-03,NA,1.0\n"
    )
    with pytest.raises(TransactionSchemaError, match="quantity") as caught:
        load_transactions(path)  # other columns keep pandas' missing markers: quantity NA is missing
    assert caught.value.rows == (2,)
    path.write_text(path.read_text().replace(",NA,1.0", ",1,1.0"))
    out = load_transactions(path)
    assert out[schema.ORDER_ID].tolist() == ["NA", "NULL", "3"]
    assert out[schema.CUSTOMER_ID].tolist() == ["None", "nan", pd.NA]
    assert out[schema.ITEM_ID].tolist() == ["NA", "N/A", "null"]


def test_an_empty_id_in_a_csv_is_reported_as_the_text_in_the_file(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,item_id,timestamp,quantity,unit_price\n1,c1,,2024-01-02,1,1.0\n")
    with pytest.raises(TransactionSchemaError, match="null or empty id") as caught:
        load_transactions(path)
    assert (caught.value.column, caught.value.rows, caught.value.values) == ("item_id", (0,), ("",))


def test_whole_floats_past_int64_keep_their_digits():
    ids = as_id_strings(pd.Series([1e19, -1e19, 2.0**63, 2.0**53, 40117.0]))
    assert ids.tolist() == [
        "10000000000000000000",
        "-10000000000000000000",
        "9223372036854775808",
        "9007199254740992",
        "40117",
    ]


def test_a_renamed_column_is_named_as_the_file_names_it(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("order,customer,sku,when,qty,price\n1,c1,A,2024-01-02,two,1.5\n")
    columns = {"order": "order_id", "customer": "customer_id", "sku": "item_id", "when": "timestamp",
               "qty": "quantity", "price": "unit_price"}
    with pytest.raises(TransactionSchemaError, match=r"column 'qty' \(quantity\)"):
        load_transactions(path, columns=columns)
