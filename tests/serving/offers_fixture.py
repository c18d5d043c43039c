"""A hand-made snapshot with customer profiles and an offer catalogue, written by the real publisher."""

from __future__ import annotations

from recsys.offers import parse_catalogue
from recsys.records import PROFILES, CustomerProfile
from tests.serving.snapshot_fixture import hand_made_lists
from training.publish import write_snapshot
from training.publish_customers import write_offer_profiles
from training.publish_offers import offer_catalogue_part

PROFILE_ROWS = [
    # c1 and c2 have recommendations in the hand-made lists (top items B and E); c3 has none.
    CustomerProfile("c1", "at_risk", 1, 3, 3, churn_probability=0.8, clv=300.0, recency_days=100.0, frequency=5,
                    country="United Kingdom"),
    CustomerProfile("c2", "champions", 5, 5, 5, churn_probability=0.1, clv=900.0, recency_days=5.0, frequency=12,
                    country="United Kingdom"),
    CustomerProfile("c3", "new", 4, 1, 1, churn_probability=0.3, clv=40.0, recency_days=20.0, frequency=1,
                    country="France"),
]


def catalogue_data(max_offers: int = 1, winback_budget: int = 3) -> dict:
    """c1 is eligible for winback, bundle; c2 for vip, bundle; c3 for first-repeat only (no recommendation)."""
    return {"contact": {"max_offers": max_offers, "window_days": 7}, "offers": [
        {"id": "winback", "name": "15% to come back", "type": "percentage_discount", "discount_percent": 15,
         "value": 40, "cost": 1, "prior": {"redemption_rate": 0.2, "strength": 10},
         "eligibility": {"churn_probability": {"min": 0.5}}, "budget": {"max_redemptions": winback_budget}},
        {"id": "vip", "name": "Double points", "type": "loyalty_points", "points": 100, "value": 30, "cost": 1,
         "prior": {"redemption_rate": 0.3}, "eligibility": {"segments": ["champions"]}},
        {"id": "bundle", "name": "Top pick bundle", "type": "bundle", "discount_percent": 10, "value": 20,
         "cost": 0.5, "prior": {"redemption_rate": 0.1}},
        {"id": "first-repeat", "name": "5 off order two", "type": "fixed_amount", "amount": 5, "value": 18,
         "cost": 0.5, "prior": {"redemption_rate": 0.1}, "eligibility": {"orders": {"max": 1}}},
    ]}


def profiles_part(profiles=PROFILE_ROWS, offer_profiles: bool = True):
    """Profiles as the customer job publishes them; without ``offer_profiles``, as a snapshot published
    before workers held them in memory."""
    def write(writer):
        writer.write(PROFILES, [p.customer_id for p in profiles], [p.to_bytes() for p in profiles])
        return write_offer_profiles(writer, profiles) if offer_profiles else {}

    return write


def publish_with_offers(store, catalogue: dict | None = None, with_catalogue: bool = True,
                        offer_profiles: bool = True):
    parts = [profiles_part(offer_profiles=offer_profiles)]
    if with_catalogue:
        parts.append(offer_catalogue_part(parse_catalogue(catalogue or catalogue_data())))
    model = {"name": "recsys-recommender", "version": "7", "run_id": "run-7", "alias": "champion"}
    return write_snapshot(hand_made_lists(), store, {"model": model}, parts=parts)
