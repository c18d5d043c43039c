from pathlib import Path

import pytest
import yaml

from recsys.offers import CatalogueError, OfferType, load_catalogue, parse_catalogue
from recsys.offers.catalogue import Catalogue

EXAMPLE = Path(__file__).resolve().parents[2] / "recsys" / "offers" / "example_catalogue.yaml"


def offer(**overrides):
    base = {"id": "o1", "name": "Offer one", "type": "free_shipping", "value": 10, "cost": 1,
            "prior": {"redemption_rate": 0.1}}
    return {**base, **overrides}


def problems_of(data) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(data)
    return info.value.problems


def test_example_catalogue_is_valid():
    catalogue = load_catalogue(EXAMPLE)
    assert len(catalogue.offers) == 5
    assert {o.type for o in catalogue.offers} == set(OfferType)
    # total 20000 pays for 25000 impressions at cost 0.8; redemptions are not limited
    assert (catalogue["vip-points"].impression_limit, catalogue["vip-points"].redemption_limit) == (25_000, None)
    assert (catalogue["winback-15"].impression_limit, catalogue["winback-15"].redemption_limit) == (None, 5000)


def test_error_names_offer_id_and_field():
    problems = problems_of({"offers": [offer(), offer(id="winback", eligibility={"churn_probability":
                                                                                {"min": 0.9, "max": 0.5}})]})
    assert len(problems) == 1
    assert problems[0].startswith("offer 'winback': eligibility.churn_probability")
    assert "min 0.9 is above max 0.5" in problems[0]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"value": -1}, "value"),
    ({"type": "coupon"}, "type"),
    ({"eligibility": {"segment": ["x"]}}, "eligibility.segment"),  # misspelt key
    ({"prior": {"redemption_rate": 1.5}}, "prior.redemption_rate"),
    ({"budget": {"max_redemptions": 0}}, "budget.max_redemptions"),
    ({"validity": {"starts_at": "2025-02-01", "ends_at": "2025-01-01"}}, "validity"),
    ({"type": "percentage_discount"}, "discount_percent: required for type percentage_discount"),
    ({"type": "free_shipping", "points": 5}, "points: does not apply to type free_shipping"),
    ({"eligibility": {"churn_probability": {"min": 1.5}}}, "eligibility.churn_probability.min"),
    # YAML's .inf and .nan: a snapshot's JSON cannot carry them, and no cap or budget is infinite
    ({"repeat_after_days": float("inf")}, "repeat_after_days"),
    ({"budget": {"total": float("inf")}}, "budget.total"),
    ({"value": float("nan")}, "value"),
    # a range with neither bound restricts nothing and cannot be written as a reason
    ({"eligibility": {"clv": {}}}, "eligibility.clv"),
    ({"eligibility": {"clv": {"min": None, "max": None}}}, "eligibility.clv"),
])
def test_each_bad_field_is_named(overrides, field):
    problems = problems_of({"offers": [offer(**overrides)]})
    assert any(p.startswith(f"offer 'o1': {field}") for p in problems), problems


def test_every_problem_is_reported_and_duplicates_rejected():
    problems = problems_of({"offers": [offer(value=-1), offer(id="o2", cost=-1), offer()], "extra": 1})
    text = "\n".join(problems)
    assert "offer 'o1': value" in text and "offer 'o2': cost" in text
    assert "offer 'o1': id: appears more than once" in text
    assert "unknown field 'extra'" in text


def test_one_run_lists_every_problem_of_an_offer(tmp_path):
    # the type's terms, a probability bound and a segment used to show one per run, each after the last was fixed
    problems = _file_problems(tmp_path, [offer(type="percentage_discount", eligibility={
        "churn_probability": {"min": 1.5}, "segments": ["Champs"]})])
    text = "\n".join(problems)
    assert "offer 'o1': discount_percent: required for type percentage_discount" in text
    assert "offer 'o1': eligibility.churn_probability.min: Input should be less than or equal to 1" in text
    assert "offer 'o1': eligibility.segments: 'Champs' is not a segment" in text


def test_offer_without_id_is_named_by_position():
    problems = problems_of({"offers": [offer(), {k: v for k, v in offer().items() if k != "id"}]})
    assert problems[0].startswith("offer #2 (no id): id")


def test_version_is_a_content_hash(tmp_path):
    data = yaml.safe_load(EXAMPLE.read_text())
    same = tmp_path / "same.yaml"
    same.write_text("# reformatted\n" + yaml.safe_dump(data, sort_keys=True))
    assert load_catalogue(same).version == load_catalogue(EXAMPLE).version
    data["offers"][0]["cost"] = 2.0
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data))
    assert load_catalogue(changed).version != load_catalogue(EXAMPLE).version


def test_bytes_round_trip_keeps_the_version():
    catalogue = load_catalogue(EXAMPLE)
    assert parse_catalogue.__module__  # decoding re-validates through the same parser
    again = type(catalogue).from_bytes(catalogue.to_bytes())
    assert again == catalogue and again.version == catalogue.version


def test_not_yaml_or_empty_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("offers: [unclosed")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(bad)
    assert "non-empty list" in problems_of({"offers": []})[0]


@pytest.mark.parametrize(("total", "cost", "limit"), [(1100, 0.55, 2000), (700, 0.07, 10_000), (0.3, 0.1, 3)])
def test_a_money_budget_allows_every_impression_it_pays_for(total, cost, limit):
    # 1100 / 0.55 is 1999.9999999999998 in binary floating point: flooring that lost one impression
    catalogue = parse_catalogue({"offers": [offer(cost=cost, budget={"total": total})]})
    assert catalogue["o1"].impression_limit == limit and catalogue["o1"].redemption_limit is None


def test_an_offer_that_costs_nothing_to_show_is_not_limited_by_money():
    catalogue = parse_catalogue({"offers": [offer(cost=0, budget={"total": 100, "max_redemptions": 7})]})
    assert (catalogue["o1"].impression_limit, catalogue["o1"].redemption_limit) == (None, 7)


def test_malformed_ids_and_contact_are_reported_not_crashed_on_or_ignored():
    problems = problems_of({"offers": [offer(id=["winback"])], "contact": []})
    text = "\n".join(problems)
    assert "offer #1 (no id): id" in text
    assert "contact" in text  # an empty list is not the default policy


def _file_problems(tmp_path, offers: list[dict]) -> list[str]:
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"offers": offers}))
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    return info.value.problems


def test_a_misspelt_segment_in_a_file_is_refused_with_the_closest_name(tmp_path):
    # accepted, it would match no customer and silently narrow the offer's eligibility
    problems = _file_problems(tmp_path, [offer(id="vip", eligibility={"segments": ["Champions", "Loyl Customers"]}),
                                         offer(id="winback", segment_priors={"at_rsk": {"redemption_rate": 0.2}})])
    assert problems[0].startswith("offer 'vip': eligibility.segments: 'Loyl Customers' is not a segment")
    assert "did you mean 'Loyal Customers'?" in problems[0] and "valid: Champions, Loyal Customers" in problems[0]
    assert problems[1].startswith("offer 'winback': segment_priors: 'at_rsk'") and "'At Risk'" in problems[1]
    assert len(problems) == 2


def test_segments_in_a_file_are_names_or_slugs_and_priors_may_name_the_unknown_segment(tmp_path):
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"offers": [offer(
        eligibility={"segments": ["Can't Lose Them", "at_risk", "new-customers"]},
        segment_priors={"unknown": {"redemption_rate": 0.2}, "Lost": {"redemption_rate": 0.1}})]}))
    assert load_catalogue(path)["o1"].eligibility.segments == ["Can't Lose Them", "at_risk", "new-customers"]
    # customers without a segment get the 'unknown' prior but never match an eligibility segment
    problems = _file_problems(tmp_path, [offer(eligibility={"segments": ["unknown"]})])
    assert problems[0].startswith("offer 'o1': eligibility.segments: 'unknown' is not a segment")


def test_a_published_catalogue_is_read_back_whatever_its_segments():
    # a snapshot passed the checks of its day: serving must still read it
    catalogue = parse_catalogue({"offers": [offer(eligibility={"segments": ["loyal"]})]})
    assert Catalogue.from_bytes(catalogue.to_bytes()) == catalogue


def test_an_impossible_date_is_bad_yaml_naming_its_line(tmp_path):
    # YAML turns 2025-02-30 into datetime's bare ValueError, with no position
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"offers": [offer()]}) + "  validity: {starts_at: 2025-02-30T00:00:00Z}\n")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(bad)
    (problem,) = info.value.problems
    assert problem.startswith(f"{bad}: not valid YAML: '2025-02-30T00:00:00Z' is not a valid date")
    assert f"line {len(bad.read_text().splitlines())}" in problem
