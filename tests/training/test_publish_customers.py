"""What the customer part writes into a snapshot: profiles, segment records and columnar member pages."""

from __future__ import annotations

import orjson
import pytest

from feature_store import open_store
from recsys.offer_profiles import OFFER_PROFILES_KEY, TOP_ITEMS_KEY, OfferProfiles, chunk_key
from recsys.records import META, PROFILES, SEGMENT_MEMBERS, SEGMENTS, CustomerProfile
from tests.serving.snapshot_fixture import hand_made_lists
from training.publish import write_snapshot
from training.publish_customers import (
    SEGMENT_INDEX_KEY,
    CustomerPublishError,
    customer_snapshot_part,
    slugify,
)

# i % 10: 0-3 Champions (1000), 4-5 Loyal (500), 6-7 Can't Lose Them (500), 8 At Risk (250), 9 Hibernating (250).
SEGMENT_OF_DIGIT = ["Champions"] * 4 + ["Loyal"] * 2 + ["Can't Lose Them"] * 2 + ["At Risk", "Hibernating"]
SEGMENTS_DEFINED = [
    {"name": "Champions", "definition": "R>=4 and F>=4", "revenue_share": 0.5},
    {"name": "Loyal", "definition": "F>=4", "revenue_share": 0.2},
    {"name": "Can't Lose Them", "definition": "R<=2 and F>=4", "revenue_share": 0.15},
    {"name": "At Risk", "definition": "R<=2 and F>=2", "revenue_share": 0.1},
    {"name": "Hibernating", "definition": "R<=2 and F<=2", "revenue_share": 0.05},
]
CLUSTERS = [{"id": 0, "name": "Bargain hunters"}, {"id": 1, "name": "Big baskets"}]
PAGE_SIZE = 200


def hand_made_profile(i: int) -> CustomerProfile:
    """Churn i%100/100 (unknown when i%11==0), CLV i (unknown when i%7==0), i%3 churn reasons."""
    reasons = [{"feature": "recency_days", "value": float(i % 30), "contribution": 0.5},
               {"feature": "frequency", "value": i % 4, "contribution": -0.25}][: i % 3]
    return CustomerProfile(
        customer_id=f"c{i:05d}", segment=SEGMENT_OF_DIGIT[i % 10], recency_score=1 + i % 5,
        frequency_score=1 + i % 4, monetary_score=1 + i % 3, cluster=i % 2, cluster_name=CLUSTERS[i % 2]["name"],
        churn_probability=None if i % 11 == 0 else (i % 100) / 100, churn_reasons=reasons,
        p_alive=1 - (i % 100) / 200, expected_purchases=(i % 5) / 2, clv=None if i % 7 == 0 else float(i),
        recency_days=float(i % 30), frequency=1 + i % 6, monetary=10.0 * (1 + i % 9), country="UK" if i % 2 else "FR")


def hand_made_profiles(n: int = 2500) -> list[CustomerProfile]:
    return [hand_made_profile(i) for i in range(n)]


def publish_customers(store, profiles=None, version: str = "7"):
    profiles = hand_made_profiles() if profiles is None else profiles
    part = customer_snapshot_part(profiles, SEGMENTS_DEFINED, CLUSTERS, page_size=PAGE_SIZE,
                                  info={"clv_status": "ok", "run_id": "ci-" + version})
    model = {"name": "recsys-recommender", "version": version, "run_id": "run-" + version, "alias": "champion"}
    return write_snapshot(hand_made_lists(), store, {"model": model}, parts=[part])


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}", prefix="t")
    yield store
    store.close()


def test_profiles_are_stored_by_customer_id(store):
    manifest = publish_customers(store)
    sid = manifest.snapshot_id
    assert manifest.counts[PROFILES] == 2500
    assert CustomerProfile.from_bytes(store.get(sid, PROFILES, "c00013")) == hand_made_profile(13)
    assert store.get(sid, PROFILES, "c02500") is None


def test_the_offer_profiles_published_hold_every_profile_and_top_item(store):
    manifest = publish_customers(store)
    sid = manifest.snapshot_id
    assert manifest.metadata[OFFER_PROFILES_KEY] == {"chunks": 1, "customers": 2500}
    chunks = {kind: [store.get(sid, META, chunk_key(kind, i)) for i in range(manifest.metadata[kind]["chunks"])]
              for kind in (OFFER_PROFILES_KEY, TOP_ITEMS_KEY)}
    table = OfferProfiles.from_chunks(chunks[OFFER_PROFILES_KEY], chunks[TOP_ITEMS_KEY])
    assert len(table) == 2500
    profile, top_item = table.profile(table.row("c00013"))
    expected = hand_made_profile(13)
    assert (profile.segment, profile.churn_probability, profile.clv, profile.recency_days, profile.frequency,
            profile.country) == (expected.segment, expected.churn_probability, expected.clv,
                                 expected.recency_days, expected.frequency, expected.country)
    # the hand-made lists rank items for c1 and c2 only; no other customer has a top item
    assert top_item == -1


def test_segment_records_and_index(store):
    sid = publish_customers(store).snapshot_id
    record = orjson.loads(store.get(sid, SEGMENTS, "Can't Lose Them"))
    assert record == {"name": "Can't Lose Them", "definition": "R<=2 and F>=4", "revenue_share": 0.15,
                      "slug": "cant-lose-them", "size": 500, "pages": 3, "page_size": PAGE_SIZE}
    index = orjson.loads(store.get(sid, SEGMENTS, SEGMENT_INDEX_KEY))
    assert [(s["name"], s["size"], s["pages"]) for s in index["segments"]] == [
        ("Champions", 1000, 5), ("Loyal", 500, 3), ("Can't Lose Them", 500, 3), ("At Risk", 250, 2),
        ("Hibernating", 250, 2)]
    assert index["clusters"] == CLUSTERS
    assert index["profiles"] == 2500 and index["page_size"] == PAGE_SIZE
    assert index["columns"][-6:] == ["reason_1_feature", "reason_1_value", "reason_1_contribution",
                                     "reason_2_feature", "reason_2_value", "reason_2_contribution"]
    assert index["info"] == {"clv_status": "ok", "run_id": "ci-7"}


def test_member_pages_are_columnar_and_keep_profile_order(store):
    sid = publish_customers(store).snapshot_id
    assert store.get(sid, SEGMENT_MEMBERS, "At Risk:2") is None
    last = orjson.loads(store.get(sid, SEGMENT_MEMBERS, "At Risk:1"))
    # At Risk is every i with i % 10 == 8: its 201st member is i = 2008.
    assert last["customer_id"] == [f"c{i:05d}" for i in range(2008, 2500, 10)]
    assert "segment" not in last
    row = last["customer_id"].index("c02018")
    p = hand_made_profile(2018)
    assert (last["churn_probability"][row], last["clv"][row], last["country"][row]) == (0.18, 2018.0, "FR")
    assert (last["reason_1_feature"][row], last["reason_2_value"][row]) == ("recency_days", p.churn_reasons[1]["value"])
    unknown = last["customer_id"].index("c02058")  # 2058 = 7 * 294 = 3 * 686: CLV unknown, no reasons
    assert last["clv"][unknown] is None and last["reason_1_feature"][unknown] is None
    walked = sorted(k for batch in store.iter_namespace(sid, SEGMENT_MEMBERS) for k, _ in batch)
    assert len(walked) == 15 and walked[0] == "At Risk:0"


def test_manifest_metadata(store):
    manifest = publish_customers(store)
    ci = manifest.metadata["customer_intelligence"]
    assert ci["segments"] == [s["name"] for s in SEGMENTS_DEFINED]
    assert ci["segment_sizes"] == {"Champions": 1000, "Loyal": 500, "Can't Lose Them": 500, "At Risk": 250,
                                   "Hibernating": 250}
    assert (ci["page_size"], ci["profiles"], ci["clusters"]) == (PAGE_SIZE, 2500, 2)
    assert manifest.metadata["model"]["version"] == "7"


def test_inconsistent_input_is_refused_and_nothing_is_published(store):
    profiles = hand_made_profiles(20)
    with pytest.raises(CustomerPublishError, match="Champions"):
        customer_snapshot_part(profiles, SEGMENTS_DEFINED[1:])
    with pytest.raises(CustomerPublishError, match="says size 3"):
        customer_snapshot_part(profiles, [{**SEGMENTS_DEFINED[0], "size": 3}, *SEGMENTS_DEFINED[1:]])
    with pytest.raises(CustomerPublishError, match="reserved"):
        customer_snapshot_part([], [{"name": "All"}])
    with pytest.raises(CustomerPublishError, match="share the slug"):
        customer_snapshot_part([], [{"name": "At Risk"}, {"name": "at-risk"}])
    # one id twice: the store would keep one profile, the segment pages would list both
    with pytest.raises(CustomerPublishError, match=r"1 customer id\(s\) appear more than once.*c00001"):
        customer_snapshot_part([*profiles, profiles[1]], SEGMENTS_DEFINED)
    assert store.current_snapshot_id() is None


def test_slugs():
    assert slugify("Can't Lose Them") == "cant-lose-them"
    assert slugify("  Need Attention / New ") == "need-attention-new"

