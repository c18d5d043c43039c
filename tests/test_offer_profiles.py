"""Offer profiles: the columns a serving worker holds decide exactly as the profiles they come from."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from recsys.offer_profiles import OfferProfiles, encode_profile_chunks, encode_top_item_chunks
from recsys.offers import parse_catalogue, rank_offers
from recsys.records import CustomerProfile

PROFILES = [
    CustomerProfile("c10", "At Risk", 1, 3, 3, churn_probability=0.8, clv=300.0, recency_days=100.0, frequency=5,
                    country="United Kingdom"),
    CustomerProfile("c2", "Champions", 5, 5, 5, churn_probability=0.1, clv=900.5, recency_days=5.0, frequency=12,
                    country="France"),
    CustomerProfile("é-7", "New", 4, 1, 1, churn_probability=None, clv=None, recency_days=None, frequency=None,
                    country=None),
    CustomerProfile("c1", "Champions", 5, 4, 5, churn_probability=0.0, clv=0.0, recency_days=0.0, frequency=1,
                    country="Germany"),
]
# ranked lists as the recommendations writer has them: c2 has an empty list, c9 has no profile
TOP_BLOCKS = [(np.array(["c10", "c2"], dtype=object), np.array([[4, 1], [-1, -1]])),
              (np.array(["c9", "c1"], dtype=object), np.array([[7, 2], [0, 3]]))]
CATALOGUE = parse_catalogue({"contact": {"max_offers": 1, "window_days": 7}, "offers": [
    {"id": "winback", "name": "Come back", "type": "percentage_discount", "discount_percent": 15, "value": 40,
     "cost": 1, "prior": {"redemption_rate": 0.2}, "eligibility": {"churn_probability": {"min": 0.5},
                                                                    "days_since_last_purchase": {"min": 60}}},
    {"id": "vip", "name": "Points", "type": "loyalty_points", "points": 100, "value": 30, "cost": 1,
     "prior": {"redemption_rate": 0.3}, "eligibility": {"segments": ["champions"], "clv": {"min": 900.5}}},
    {"id": "uk", "name": "Free shipping", "type": "free_shipping", "value": 12, "cost": 0.4,
     "prior": {"redemption_rate": 0.1}, "eligibility": {"countries": ["United Kingdom", "Germany"]}},
    {"id": "first", "name": "5 off", "type": "fixed_amount", "amount": 5, "value": 18, "cost": 0.5,
     "prior": {"redemption_rate": 0.1}, "eligibility": {"orders": {"max": 1}}},
    {"id": "bundle", "name": "Bundle", "type": "bundle", "discount_percent": 10, "value": 20, "cost": 0.5,
     "prior": {"redemption_rate": 0.1}},
]})


@pytest.mark.parametrize("chunk_customers", [500_000, 1, 3])
def test_every_field_offers_read_comes_back_by_id_across_chunks(chunk_customers):
    table = OfferProfiles.from_chunks(encode_profile_chunks(PROFILES, chunk_customers),
                                      encode_top_item_chunks(TOP_BLOCKS, chunk_customers))
    assert len(table) == 4
    for original in PROFILES:
        row = table.row(original.customer_id)
        profile, _ = table.profile(row)
        for name in ("customer_id", "segment", "churn_probability", "clv", "recency_days", "frequency", "country"):
            assert getattr(profile, name) == getattr(original, name), name
        assert type(profile.frequency) is type(original.frequency)
    tops = {customer: table.profile(table.row(customer))[1] for customer in ("c10", "c2", "é-7", "c1")}
    assert tops == {"c10": 4, "c2": -1, "é-7": -1, "c1": 0}


def test_unknown_ids_are_not_found():
    table = OfferProfiles.from_chunks(encode_profile_chunks(PROFILES), encode_top_item_chunks(TOP_BLOCKS))
    # c9 has a list but no profile; "c" and "c3" fall between stored ids; "zz" after the last one
    assert [table.row(key) for key in ("c9", "c", "c3", "zz", "")] == [None] * 5


def test_an_id_ending_in_nul_is_left_to_the_store():
    # fixed-width bytes drop a trailing NUL: held, "c2\0" would answer for "c2" and the other way round
    with_nul = [*PROFILES, CustomerProfile("c2\0", "New", 1, 1, 1)]
    table = OfferProfiles.from_chunks(encode_profile_chunks(with_nul), encode_top_item_chunks(
        [(np.array(["c2\0"], dtype=object), np.array([[5]])), *TOP_BLOCKS]))
    assert len(table) == 4 and table.row("c2\0") is None
    assert table.profile(table.row("c2"))[0].segment == "Champions"
    empty = OfferProfiles.from_chunks(encode_profile_chunks([]), encode_top_item_chunks([]))
    assert len(empty) == 0 and empty.row("c1") is None


def test_decisions_from_the_columns_equal_those_from_the_profiles():
    table = OfferProfiles.from_chunks(encode_profile_chunks(PROFILES, 2), encode_top_item_chunks(TOP_BLOCKS, 2))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    eligible = {}
    for original in PROFILES:
        profile, top_row = table.profile(table.row(original.customer_id))
        item = "top" if top_row >= 0 else None
        expected = rank_offers(CATALOGUE, original, now, recommended_item=item)
        got = rank_offers(CATALOGUE, profile, now, recommended_item=item)
        assert [(d.offer_id, d.expected_value, d.reasons) for d in got] == \
            [(d.offer_id, d.expected_value, d.reasons) for d in expected]
        eligible[original.customer_id] = sorted(d.offer_id for d in got)
    # the catalogue tells the customers apart: c10 winback+uk+bundle, c2 vip, é-7 none, c1 uk+first+bundle
    assert eligible == {"c10": ["bundle", "uk", "winback"], "c2": ["vip"], "é-7": [],
                        "c1": ["bundle", "first", "uk"]}


def test_ids_are_held_as_text():
    # the recommendations' writer may hold integer ids; the profiles name the same customer as text
    table = OfferProfiles.from_chunks(encode_profile_chunks([CustomerProfile("7", "New", 1, 1, 1)]),
                                      encode_top_item_chunks([(np.array([7, 8]), np.array([[3], [4]]))]))
    assert table.profile(table.row("7"))[1] == 3 and table.row("8") is None
