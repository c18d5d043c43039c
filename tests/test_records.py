"""Snapshot value formats: what training writes is what serving reads."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from recsys.records import CustomerProfile, decode_customer_record, encode_customer_records, first_ranked_item


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


def test_first_ranked_item_reads_only_the_head_of_a_record():
    items = np.array([[7, 3, 9], [4, 0, 0]], dtype=np.int64)
    scores = np.array([[0.9, 0.5, 0.1], [0.8, 0.0, 0.0]], dtype=np.float32)
    sources = np.zeros_like(items, dtype=np.uint8)
    records = encode_customer_records(items, scores, sources, np.array([0, 2, 2]), np.array([11, 12]))
    assert [first_ranked_item(r) for r in records] == [7, 4]
    assert [int(decode_customer_record(r)[0]["item"][0]) for r in records] == [7, 4]
    assert first_ranked_item((0).to_bytes(2, "little")) is None
    with pytest.raises(ValueError, match="no header"):
        first_ranked_item(b"\x01")
