from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.loaders import TransactionSchemaError
from recsys.data.online_retail import load_online_retail, online_retail_to_canonical

# invented rows in the published file's columns and types (a float CustomerID with a gap, a cancellation)
RAW = pd.DataFrame(
    {
        "InvoiceNo": ["600101", "600101", "C600117"],
        "StockCode": ["90210A", "90311", "D"],
        "Description": ["BLUE ENAMEL TEA TIN", "GLASS CANDLE JAR", "Discount"],
        "Quantity": [4, 12, -1],
        "InvoiceDate": pd.to_datetime(["2021-03-04 10:15", "2021-03-04 10:15", "2021-03-05 14:02"]),
        "UnitPrice": [4.10, 1.95, 27.5],
        "CustomerID": [40117.0, np.nan, 40391.0],
        "Country": ["United Kingdom", "United Kingdom", "France"],
    }
)


def _check(out: pd.DataFrame) -> None:
    assert {c: str(t) for c, t in out.dtypes.items()} == schema.DTYPES
    assert out[schema.CUSTOMER_ID].tolist() == ["40117", pd.NA, "40391"]
    assert out[schema.ORDER_ID].tolist() == ["600101", "600101", "C600117"]
    assert out[schema.ITEM_NAME].iloc[0] == "BLUE ENAMEL TEA TIN"
    assert out[schema.COUNTRY].tolist() == ["United Kingdom", "United Kingdom", "France"]
    assert out[schema.CATEGORY].isna().all()
    assert out[schema.QUANTITY].tolist() == [4.0, 12.0, -1.0]


def test_adapter_maps_columns_and_customer_ids():
    _check(online_retail_to_canonical(RAW, source="toy"))


def test_parquet_and_csv_give_the_same_frame(tmp_path):
    RAW.to_parquet(tmp_path / "retail.parquet")
    RAW.to_csv(tmp_path / "retail.csv", index=False)  # writes CustomerID as "40117.0"
    from_parquet = load_online_retail(tmp_path / "retail.parquet")
    _check(from_parquet)
    pd.testing.assert_frame_equal(load_online_retail(tmp_path / "retail.csv"), from_parquet)


def test_errors_name_the_file(tmp_path):
    RAW.assign(InvoiceDate=["2021-03-04", "not a date", "2021-03-05"]).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(TransactionSchemaError) as caught:
        load_online_retail(tmp_path / "r.csv")
    assert caught.value.source.endswith("r.csv") and caught.value.rows == (1,)


@pytest.mark.data
def test_real_file_shape(online_retail_path):
    out = load_online_retail(online_retail_path)
    assert len(out) == 541_909
    assert out[schema.CUSTOMER_ID].isna().sum() == 135_080
    assert not out[schema.CUSTOMER_ID].str.contains(".", regex=False).any()
    assert out[schema.ORDER_ID].str.startswith("C").sum() == 9_288


def test_canonical_file_lists_missing_source_columns_and_those_present(tmp_path):
    canonical = online_retail_to_canonical(RAW, source="toy")
    canonical.to_parquet(tmp_path / "canonical.parquet")
    canonical.to_csv(tmp_path / "canonical.csv", index=False)
    for path in (tmp_path / "canonical.parquet", tmp_path / "canonical.csv"):
        with pytest.raises(TransactionSchemaError) as caught:
            load_online_retail(path)
        assert (caught.value.source, caught.value.column) == (str(path), "InvoiceNo")
        assert "missing Online Retail column(s) ['InvoiceNo', 'StockCode'" in str(caught.value)
        assert f"present: {list(canonical.columns)}" in str(caught.value)


def test_csv_row_longer_than_the_header_is_an_error(tmp_path):
    path = tmp_path / "retail.csv"
    RAW.to_csv(path, index=False)
    with path.open("a") as handle:
        handle.write("600102,90412,PAPER LANTERN, RED,3,2021-03-04 10:20:00,0.85,40117.0,United Kingdom\n")
    with pytest.raises(TransactionSchemaError) as caught:
        load_online_retail(path)
    assert (caught.value.column, caught.value.rows) == (None, (3,))
    assert "[9] fields on lines [5] of the file" in str(caught.value)


def test_a_bad_value_names_the_column_as_the_file_does(tmp_path):
    path = tmp_path / "retail.csv"
    path.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
                    "1,A,x,4,3/4/2021 10:15,4.1,40117.0,UK\n2,A,x,six,3/4/2021 10:15,4.1,40117.0,UK\n")
    with pytest.raises(TransactionSchemaError, match=r"column 'Quantity' \(quantity\): 1 row\(s\)") as raised:
        load_online_retail(path)
    assert raised.value.column == "quantity" and raised.value.values == ("six",)
