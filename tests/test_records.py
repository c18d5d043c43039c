"""Snapshot value formats: what training writes is what serving reads."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from recsys.records import (
    CustomerProfile,
    RankedRows,
    decode_customer_record,
    encode_customer_records,
    encode_ranked,
    first_ranked_item,
)


def test_profile_round_trip_keeps_every_field_and_fills_defaults():
    full = CustomerProfile("c1", "at_risk", 1, 3, 3, cluster=2, cluster_name="bargain hunters", churn_probability=0.7,
                           churn_reasons=[{"feature": "recency_days", "value": 120, "contribution": 0.4}],
                           clv=300.0, recency_days=120.0, frequency=4, monetary=812.5, country="France")
    assert CustomerProfile.from_bytes(full.to_bytes()) == full
    minimal = CustomerProfile.from_bytes(orjson.dumps({"customer_id": "c2", "segment": "new", "recency_score": 5,
                                                       "frequency_score": 1, "monetary_score": 1}))
    assert minimal == CustomerProfile("c2", "new", 5, 1, 1)
    assert minimal.churn_reasons == [] and minimal.churn_reasons is not CustomerProfile.from_bytes(
        minimal.to_bytes()).churn_reasons  # no list shared between profiles
    with pytest.raises(AttributeError):
        minimal.segment = "other"  # still frozen


@pytest.mark.parametrize(("payload", "message"), [
    ({"customer_id": "c", "segment": "new", "recency_score": 5, "frequency_score": 1}, "monetary_score"),
    ({"customer_id": "c", "segment": "new", "recency_score": 5, "frequency_score": 1, "monetary_score": 1,
      "shoe_size": 9}, "shoe_size"),
])
def test_profile_with_a_missing_or_unknown_field_is_refused_by_name(payload, message):
    with pytest.raises(TypeError, match=message):
        CustomerProfile.from_bytes(orjson.dumps(payload))


def test_customer_records_round_trip_both_lists_and_the_history():
    # customer 0: list 7, 3, 9 and new items 9, 5; customer 1: list 4 and no new item; 0 bought 11 and 12
    ranked = RankedRows(np.array([[7, 3, 9], [4, -1, -1]]), np.array([[0.9, 0.5, 0.1], [0.8, 0, 0]], np.float32),
                        np.array([[0, 1, 0], [1, 1, 1]], np.uint8))
    new_items = RankedRows(np.array([[9, 5], [-1, -1]]), np.array([[0.7, 0.2], [0, 0]], np.float32),
                           np.uint8(2))
    records = encode_customer_records(ranked, new_items, np.array([0, 2, 2]), np.array([11, 12]))
    first, second = (decode_customer_record(r) for r in records)
    assert first.ranked["item"].tolist() == [7, 3, 9] and first.ranked["source"].tolist() == [0, 1, 0]
    assert first.ranked["score"].tolist() == pytest.approx([0.9, 0.5, 0.1])
    assert first.new_items["item"].tolist() == [9, 5] and first.new_items["source"].tolist() == [2, 2]
    assert first.new_items["score"].tolist() == pytest.approx([0.7, 0.2])
    assert first.bought.tolist() == [11, 12]
    assert second.ranked["item"].tolist() == [4] and len(second.new_items) == 0 and len(second.bought) == 0
    assert len(records[0]) == 2 + 3 * 9 + 2 + 2 * 9 + 2 + 2 * 4


def test_a_record_without_a_new_items_list_says_so():
    ranked = RankedRows(np.array([[7, 3]]), np.array([[0.9, 0.5]], np.float32), np.uint8(1))
    record = encode_customer_records(ranked, None, np.array([0, 1]), np.array([3]))[0]
    decoded = decode_customer_record(record)
    assert decoded.ranked["item"].tolist() == [7, 3] and decoded.new_items is None
    assert decoded.bought.tolist() == [3] and len(record) == 2 + 2 * 9 + 2 + 2 + 4
    with pytest.raises(ValueError, match="customer record of"):
        decode_customer_record(record[:-1])


def test_a_record_without_new_items_apart_carries_the_items_beyond_its_ranked_list():
    # customer 0 bought 3 and 9, both in its list 7, 3, 9: the model's next new items 5 and 2 follow
    ranked = RankedRows(np.array([[7, 3, 9], [4, 8, 6]]), np.ones((2, 3), np.float32), np.uint8(1))
    beyond = RankedRows(np.array([[5, 2], [-1, -1]]), np.array([[0.4, 0.3], [0, 0]], np.float32), np.uint8(1))
    first, second = (decode_customer_record(r) for r in encode_customer_records(
        ranked, None, np.array([0, 2, 2]), np.array([3, 9]), beyond_ranked=beyond))
    assert first.new_items is None and first.beyond_ranked["item"].tolist() == [5, 2]
    assert first.beyond_ranked["score"].tolist() == pytest.approx([0.4, 0.3])
    assert first.first_purchase_order()["item"].tolist() == [7, 3, 9, 5, 2]
    assert first.bought.tolist() == [3, 9]
    assert len(second.beyond_ranked) == 0 and second.first_purchase_order()["item"].tolist() == [4, 8, 6]


def test_the_new_items_list_is_the_first_purchase_order_where_a_record_holds_one():
    ranked = RankedRows(np.array([[7, 3]]), np.ones((1, 2), np.float32), np.uint8(0))
    new_items = RankedRows(np.array([[5]]), np.ones((1, 1), np.float32), np.uint8(0))
    record = decode_customer_record(encode_customer_records(ranked, new_items, np.array([0, 1]), np.array([3]))[0])
    assert record.first_purchase_order()["item"].tolist() == [5] and len(record.beyond_ranked) == 0


def test_a_record_of_format_2_reads_with_nothing_beyond_its_ranked_list():
    none = (0xFFFF).to_bytes(2, "little")
    record = (2).to_bytes(2, "little") + encode_ranked([7, 3], [0.9, 0.5], 1) + none + np.array([3], "<u4").tobytes()
    decoded = decode_customer_record(record, record_format=2)
    assert decoded.ranked["item"].tolist() == [7, 3] and decoded.new_items is None
    assert decoded.bought.tolist() == [3] and len(decoded.beyond_ranked) == 0
    with pytest.raises(ValueError, match="record format 2"):
        decode_customer_record(record[:-1], record_format=2)


def test_a_record_of_format_1_reads_as_one_list_and_the_history():
    record = (2).to_bytes(2, "little") + encode_ranked([7, 3], [0.9, 0.5], 1) + np.array([3, 4], "<u4").tobytes()
    decoded = decode_customer_record(record, record_format=1)
    assert decoded.ranked["item"].tolist() == [7, 3] and decoded.new_items is None
    assert decoded.bought.tolist() == [3, 4]
    with pytest.raises(ValueError, match="record format 1"):
        decode_customer_record(record[:-1], record_format=1)


@pytest.mark.parametrize("cut", [1, 10, 2 + 3 * 9 + 1, 2 + 3 * 9 + 2 + 2 * 9 + 3])
def test_a_truncated_customer_record_is_refused(cut):
    ranked = RankedRows(np.array([[7, 3, 9]]), np.ones((1, 3), np.float32), np.uint8(0))
    new_items = RankedRows(np.array([[9, 5]]), np.ones((1, 2), np.float32), np.uint8(0))
    record = encode_customer_records(ranked, new_items, np.array([0, 2]), np.array([11, 12]))[0]
    with pytest.raises(ValueError, match="customer record of"):
        decode_customer_record(record[:cut])


def test_first_ranked_item_reads_only_the_head_of_a_record():
    items = np.array([[7, 3, 9], [4, 0, 0]], dtype=np.int64)
    scores = np.array([[0.9, 0.5, 0.1], [0.8, 0.0, 0.0]], dtype=np.float32)
    sources = np.zeros_like(items, dtype=np.uint8)
    new_items = RankedRows(np.array([[5], [6]]), np.ones((2, 1), np.float32), np.uint8(0))
    records = encode_customer_records(RankedRows(items, scores, sources), new_items, np.array([0, 2, 2]),
                                      np.array([11, 12]))
    assert [first_ranked_item(r) for r in records] == [7, 4]
    assert [int(decode_customer_record(r).ranked["item"][0]) for r in records] == [7, 4]
    assert first_ranked_item((0).to_bytes(2, "little")) is None
    with pytest.raises(ValueError, match="no header"):
        first_ranked_item(b"\x01")
