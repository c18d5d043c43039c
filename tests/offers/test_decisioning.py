from datetime import UTC, datetime

import numpy as np
import pytest

from recsys.offer_profiles import OfferProfiles, encode_profile_chunks, encode_top_item_chunks
from recsys.offers import (
    BetaPosterior,
    OutcomeCounter,
    Outcomes,
    check_eligibility,
    count_eligible,
    count_eligible_held,
    outcome_fields,
    outcomes_from_fields,
    parse_catalogue,
    rank_offers,
)
from recsys.records import CustomerProfile

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def profile(**overrides) -> CustomerProfile:
    base = {"customer_id": "c1", "segment": "at_risk", "recency_score": 1, "frequency_score": 3,
            "monetary_score": 3, "churn_probability": 0.7, "clv": 300.0, "recency_days": 120.0,
            "frequency": 4, "country": "United Kingdom"}
    return CustomerProfile(**{**base, **overrides})


CATALOGUE = parse_catalogue({"offers": [
    {"id": "winback", "name": "Winback", "type": "percentage_discount", "discount_percent": 15, "value": 40,
     "cost": 1, "prior": {"redemption_rate": 0.05},
     "eligibility": {"churn_probability": {"min": 0.5}, "days_since_last_purchase": {"min": 60},
                     "segments": ["at_risk", "hibernating"]}},
    {"id": "vip", "name": "VIP", "type": "loyalty_points", "points": 100, "value": 30, "cost": 1,
     "prior": {"redemption_rate": 0.2}, "eligibility": {"clv": {"min": 500}}},
    {"id": "ship", "name": "Ship", "type": "free_shipping", "value": 10, "cost": 0.2,
     "prior": {"redemption_rate": 0.1}, "eligibility": {"countries": ["United Kingdom"], "orders": {"min": 2}},
     "validity": {"starts_at": "2025-01-01T00:00:00Z", "ends_at": "2025-12-31T00:00:00Z"}},
    {"id": "bundle", "name": "Bundle", "type": "bundle", "discount_percent": 10, "value": 20, "cost": 0.5,
     "prior": {"redemption_rate": 0.04}, "segment_priors": {"at_risk": {"redemption_rate": 0.5}}},
]})


def test_eligibility_reasons_name_the_rules_that_held():
    verdict = check_eligibility(CATALOGUE["winback"], profile(), NOW)
    assert verdict.eligible
    assert verdict.reasons == ["segment 'at_risk' in ['at_risk', 'hibernating']", "churn_probability 0.7 >= 0.5",
                               "days_since_last_purchase 120 >= 60"]


@pytest.mark.parametrize(("offer_id", "overrides", "reason"), [
    ("winback", {"segment": "champions"}, "segment 'champions' not in"),
    ("winback", {"churn_probability": 0.2}, "churn_probability 0.2 not >= 0.5"),
    ("winback", {"churn_probability": None}, "churn_probability unknown"),
    ("vip", {"clv": 499.0}, "clv 499 not >= 500"),
    ("ship", {"country": "France"}, "country 'France' not in"),
    ("ship", {"frequency": 1}, "orders 1 not >= 2"),
])
def test_ineligible_profiles_say_which_rule_failed(offer_id, overrides, reason):
    verdict = check_eligibility(CATALOGUE[offer_id], profile(**overrides), NOW)
    assert not verdict.eligible
    assert verdict.reasons[0].startswith(reason)


def test_validity_window_and_bundle_item():
    assert not check_eligibility(CATALOGUE["ship"], profile(), datetime(2026, 1, 1, tzinfo=UTC)).eligible
    assert not check_eligibility(CATALOGUE["bundle"], profile(), NOW, recommended_item=None).eligible
    verdict = check_eligibility(CATALOGUE["bundle"], profile(), NOW, recommended_item="SKU1")
    assert verdict.eligible and "SKU1" in verdict.reasons[0]


def test_ranking_by_expected_value_with_segment_priors():
    ranked = rank_offers(CATALOGUE, profile(), NOW, recommended_item="SKU1")
    # bundle 0.5*20-0.5=9.5; winback 0.05*40-1=1.0; ship 0.1*10-0.2=0.8; vip ineligible (clv 300)
    assert [d.offer_id for d in ranked] == ["bundle", "winback", "ship"]
    assert [round(d.expected_value, 6) for d in ranked] == [9.5, 1.0, 0.8]
    assert ranked[0].recommended_item == "SKU1" and ranked[1].recommended_item is None
    assert ranked[0].p_redeem == ranked[0].p_mean == 0.5


def test_outcomes_move_the_ranking():
    outcomes = {("bundle", "at_risk"): Outcomes(impressions=1000, redemptions=0)}
    ranked = rank_offers(CATALOGUE, profile(), NOW, outcomes=outcomes, recommended_item="SKU1")
    assert ranked[0].offer_id == "winback"
    bundle = next(d for d in ranked if d.offer_id == "bundle")
    assert bundle.alpha == pytest.approx(10.0) and bundle.beta == pytest.approx(1010.0)


def test_beta_updates():
    prior = BetaPosterior(2.0, 18.0)
    post = prior.updated(Outcomes(impressions=80, redemptions=30))
    assert (post.alpha, post.beta) == (32.0, 68.0)
    assert post.mean == pytest.approx(0.32)
    # redemptions through another channel never make beta shrink below the prior
    assert prior.updated(Outcomes(impressions=1, redemptions=3)).beta == 18.0
    with pytest.raises(ValueError):
        BetaPosterior(0.0, 1.0)


def test_outcome_counter_and_store_fields_round_trip():
    counter = OutcomeCounter()
    for redeemed in (True, False, False):
        counter.record("vip", "loyal", redeemed)
    assert counter.table[("vip", "loyal")] == Outcomes(3, 1)
    shown, redeemed = outcome_fields("loyal")
    assert outcomes_from_fields("vip", {shown: 3, redeemed: 1, "noise": 5}) == {("vip", "loyal"): Outcomes(3, 1)}


def test_thompson_sampling_is_deterministic_with_a_seed_and_explores():
    draws = [[d.p_redeem for d in rank_offers(CATALOGUE, profile(), NOW, rng=np.random.default_rng(42),
                                              recommended_item="x")] for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    firsts = {rank_offers(CATALOGUE, profile(segment="hibernating"), NOW, rng=rng, recommended_item="x")[0].offer_id
              for _ in range(200)}
    assert firsts == {"winback", "bundle", "ship"}  # uncertain posteriors: every eligible offer gets tried


def test_memoised_beliefs_draw_in_blocks_from_the_same_posterior():
    beliefs = {}
    rng = np.random.default_rng(7)
    draws = [rank_offers(CATALOGUE, profile(), NOW, rng=rng, recommended_item="x", beliefs=beliefs)
             for _ in range(2000)]
    assert set(beliefs) == {("winback", "at_risk"), ("ship", "at_risk"), ("bundle", "at_risk")}
    bundle = [d.p_redeem for ranked in draws for d in ranked if d.offer_id == "bundle"]
    assert len(set(bundle)) == 2000  # a fresh draw every decision, across block boundaries
    # the bundle's at_risk prior is Beta(10, 10): mean 0.5, standard deviation 0.109
    assert np.mean(bundle) == pytest.approx(0.5, abs=0.01) and np.std(bundle) == pytest.approx(0.109, abs=0.01)


def test_thompson_concentrates_once_outcomes_are_certain():
    outcomes = {("winback", "at_risk"): Outcomes(100_000, 20_000), ("bundle", "at_risk"): Outcomes(100_000, 100),
                ("ship", "at_risk"): Outcomes(100_000, 100)}
    rng = np.random.default_rng(1)
    firsts = {rank_offers(CATALOGUE, profile(), NOW, outcomes=outcomes, rng=rng, recommended_item="x")[0].offer_id
              for _ in range(100)}
    assert firsts == {"winback"}


def test_count_eligible():
    profiles = [profile(), profile(customer_id="c2", clv=900.0, segment="champions"),
                profile(customer_id="c3", country="France")]
    assert count_eligible(CATALOGUE, profiles, NOW) == {"winback": 2, "vip": 1, "ship": 2, "bundle": 3}
    # a bundle carries the customer's top recommendation: those without one cannot get it
    assert count_eligible(CATALOGUE, profiles, NOW, recommended={"c2"})["bundle"] == 1


def test_count_eligible_over_the_profiles_a_worker_holds():
    profiles = [profile(), profile(customer_id="c2", clv=900.0, segment="champions"),
                profile(customer_id="c3", country="France", churn_probability=None)]
    # c2 alone has a top recommended item (row 4); the others' lists are empty
    tops = encode_top_item_chunks([(np.array(["c1", "c2", "c3"]), np.array([[-1], [4], [-1]]))])
    held = OfferProfiles.from_chunks(encode_profile_chunks(profiles), tops)
    assert count_eligible_held(CATALOGUE, held, NOW) == count_eligible(CATALOGUE, profiles, NOW, recommended={"c2"})
    assert count_eligible_held(CATALOGUE, held, NOW)["bundle"] == 1


def test_fast_verdict_agrees_with_the_explained_one():
    from pathlib import Path

    from recsys.offers import load_catalogue
    from recsys.offers.decisioning import _Rules

    example = load_catalogue(Path(__file__).resolve().parents[2] / "recsys" / "offers" / "example_catalogue.yaml")
    rng = np.random.default_rng(5)
    segments = ["Champions", "At Risk", "Hibernating", "Lost", "New Customers", "Loyal Customers", None]
    # validity windows in both catalogues: before, inside and after them
    moments = [NOW, datetime(2023, 6, 1, tzinfo=UTC), datetime(2031, 6, 1, tzinfo=UTC)]
    checked = 0
    for catalogue in (CATALOGUE, example):
        for _ in range(300):
            customer = profile(
                segment=segments[rng.integers(len(segments))],
                churn_probability=None if rng.random() < 0.1 else float(rng.random()),
                clv=None if rng.random() < 0.1 else float(rng.gamma(2, 200)),
                frequency=int(rng.integers(0, 30)), recency_days=float(rng.integers(0, 400)),
                country=["United Kingdom", "France", None][rng.integers(3)])
            item = None if rng.random() < 0.2 else "SKU1"
            now = moments[rng.integers(len(moments))]
            for offer in catalogue.offers:
                fast = _Rules.of(offer).admit(customer, now, item)
                assert fast == check_eligibility(offer, customer, now, item).eligible
                checked += 1
    assert checked > 1000


def test_reasons_are_written_only_when_read():
    ranked = rank_offers(CATALOGUE, profile(), NOW)
    assert ranked and ranked[0]._reasons is None
    assert ranked[0].reasons == check_eligibility(CATALOGUE[ranked[0].offer_id], profile(), NOW).reasons


@pytest.mark.parametrize("segment", ["At Risk", "at-risk", "AT_RISK"])
def test_segments_and_their_priors_match_by_slug(segment):
    # the customer job writes "At Risk"; a marketer may type at_risk: the segment API matches by slug too
    customer = profile(segment=segment)
    assert check_eligibility(CATALOGUE["winback"], customer, NOW).eligible
    ranked = rank_offers(CATALOGUE, customer, NOW, recommended_item="SKU1")
    assert [d.offer_id for d in ranked] == ["bundle", "winback", "ship"]
    assert ranked[0].p_mean == 0.5  # bundle's at_risk prior
    assert dict(count_eligible(CATALOGUE, [customer], NOW))["winback"] == 1
    assert not check_eligibility(CATALOGUE["winback"], profile(segment="Loyal Customers"), NOW).eligible


def test_the_example_catalogue_speaks_the_customer_jobs_segment_names():
    from pathlib import Path

    from recsys.customers.rfm import SEGMENTS
    from recsys.offers import load_catalogue

    example = load_catalogue(Path(__file__).resolve().parents[2] / "recsys" / "offers" / "example_catalogue.yaml")
    names = set(SEGMENTS)
    for offer in example.offers:
        for segment in [*(offer.eligibility.segments or ()), *offer.segment_priors]:
            assert segment in names, f"{offer.id}: segment {segment!r} is no segment the customer job writes"
