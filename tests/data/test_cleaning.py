from __future__ import annotations

import pandas as pd
import pytest

from recsys.data import schema
from recsys.data.cleaning import REASONS, CleaningReport, CleaningRules, clean_transactions
from recsys.data.loaders import validate_transactions
from recsys.data.online_retail import load_online_retail

# One row per rule, plus rows that fail several rules (counted under the first) and clean rows.
#   row  order   customer  item   qty  price  first failing rule
#   0    1001    c1        A       2   1.00   - (kept)
#   1    1001    None      A       1   1.00   missing_customer
#   2    C1002   c1        A      -2   1.00   cancellation (a return)
#   3    C1003   None      Y      -1   1.00   missing_customer (also a cancellation)
#   4    1004    c2        Y       0   1.00   non_positive_quantity
#   5    1004    c2        Y       1   0.00   non_positive_price
#   6    1004    c2        POST    1   5.00   non_product_item
#   7    1005    c2        Y      -3  -1.00   non_positive_quantity (also non-positive price)
#   8    C1006   c2        POST   -1   5.00   cancellation, not a return (non-product)
#   9    1007    c3        Y       1   2.50   - (kept)
TOY = pd.DataFrame(
    {
        "order_id": ["1001", "1001", "C1002", "C1003", "1004", "1004", "1004", "1005", "C1006", "1007"],
        "customer_id": ["c1", None, "c1", None, "c2", "c2", "c2", "c2", "c2", "c3"],
        "item_id": ["A", "A", "A", "Y", "Y", "Y", "POST", "Y", "POST", "Y"],
        "timestamp": pd.date_range("2024-01-01", periods=10, freq="D"),
        "quantity": [2, 1, -2, -1, 0, 1, 1, -3, -1, 1],
        "unit_price": [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 5.0, -1.0, 5.0, 2.5],
    }
)


@pytest.fixture
def toy() -> pd.DataFrame:
    return validate_transactions(TOY, source="toy")


def test_each_row_counts_under_its_first_failing_rule(toy):
    result = clean_transactions(toy)
    report = result.report
    assert dict(report.dropped) == {
        "missing_customer": 2,
        "cancellation": 2,
        "non_positive_quantity": 2,
        "non_positive_price": 1,
        "non_product_item": 1,
    }
    assert tuple(report.dropped) == REASONS
    assert (report.rows_in, report.rows_out, report.returns) == (10, 2, 1)
    assert result.transactions[schema.ORDER_ID].tolist() == ["1001", "1007"]
    assert result.transactions.index.tolist() == [0, 1]
    assert list(result.transactions.dtypes) == list(toy.dtypes)


def test_returns_keep_customer_rows_of_products_with_positive_quantity(toy):
    returns = clean_transactions(toy).returns
    assert returns[schema.ORDER_ID].tolist() == ["C1002"]
    assert returns[schema.CUSTOMER_ID].tolist() == ["c1"]
    assert returns[schema.QUANTITY].tolist() == [2.0]
    assert returns.index.tolist() == [0]


@pytest.mark.parametrize(
    ("rules", "rows_out", "dropped"),
    [
        (CleaningRules(drop_missing_customer=False), 3, [0, 3, 2, 1, 1]),
        (CleaningRules(drop_cancellations=False), 2, [2, 0, 4, 1, 1]),
        (CleaningRules(drop_non_positive_quantity=False), 3, [2, 2, 0, 2, 1]),
        (CleaningRules(drop_non_positive_price=False), 3, [2, 2, 2, 0, 1]),
        (CleaningRules(non_product_items=frozenset()), 3, [2, 2, 2, 1, 0]),
        (CleaningRules(cancellation_prefix="X"), 2, [2, 0, 4, 1, 1]),
    ],
)
def test_disabled_rules_drop_nothing_and_keep_their_key(toy, rules, rows_out, dropped):
    report = clean_transactions(toy, rules).report
    assert report.rows_out == rows_out
    assert list(report.dropped.values()) == dropped
    assert report.rows_in == report.rows_out + sum(report.dropped.values())


def test_report_flat_dict_and_summary(toy):
    report = clean_transactions(toy).report
    assert report.to_dict() == {
        "rows_in": 10,
        "rows_out": 2,
        "dropped_missing_customer": 2,
        "dropped_cancellation": 2,
        "dropped_non_positive_quantity": 2,
        "dropped_non_positive_price": 1,
        "dropped_non_product_item": 1,
        "returns": 1,
    }
    assert all(type(v) is int for v in report.to_dict().values())
    text = str(report)
    assert "\n" not in text
    assert "kept 2 of 10 rows" in text and "missing_customer 2" in text and "non_product_item 1" in text


def test_report_refuses_counts_that_do_not_add_up():
    with pytest.raises(ValueError, match="do not add up"):
        CleaningReport(rows_in=5, rows_out=1, dropped=dict.fromkeys(REASONS, 1), returns=0)


def test_rules_reject_an_empty_prefix_and_a_bare_string():
    with pytest.raises(ValueError, match="cancellation_prefix"):
        CleaningRules(cancellation_prefix="")
    with pytest.raises(TypeError):
        CleaningRules(non_product_items="POST")  # type: ignore[arg-type]


def test_empty_frame(toy):
    result = clean_transactions(toy.iloc[:0])
    assert result.report.rows_in == 0 and len(result.transactions) == 0 and len(result.returns) == 0


@pytest.mark.data
def test_online_retail_known_counts(online_retail_path):
    frame = load_online_retail(online_retail_path)
    result = clean_transactions(frame)
    kept = result.transactions
    assert len(kept) == 396_337
    assert kept[schema.CUSTOMER_ID].nunique() == 4_334
    assert kept[schema.ITEM_ID].nunique() == 3_659
    assert result.report.to_dict() == {
        "rows_in": 541_909,
        "rows_out": 396_337,
        "dropped_missing_customer": 135_080,
        "dropped_cancellation": 8_905,
        "dropped_non_positive_quantity": 0,
        "dropped_non_positive_price": 40,
        "dropped_non_product_item": 1_547,
        "returns": 8_539,
    }
    assert (result.returns[schema.QUANTITY] > 0).all()
    all_items = clean_transactions(frame, CleaningRules(non_product_items=frozenset()))
    assert len(all_items.transactions) == 397_884
