from __future__ import annotations

from collections import Counter

import pytest

from experiments.ab.assignment import DesignError, ExperimentDesign, unit_fraction

UNITS = [f"customer-{i}" for i in range(100_000)]


def design(**raw) -> ExperimentDesign:
    return ExperimentDesign.from_mapping("home-recs", {"arms": {"control": 1, "treatment": 1}} | raw)


def test_unit_fraction_is_the_top_53_bits_of_sha256():
    # SHA-256("abc") = ba7816bf8f01cfea 414140de... (FIPS 180-2 test vector)
    assert unit_fraction("abc") == (0xBA7816BF8F01CFEA >> 11) / 2 ** 53
    assert 0 <= unit_fraction("") < 1


def test_assignment_is_deterministic_and_splits_by_weight():
    even = design()
    assert [even.assign(u) for u in UNITS[:50]] == [design().assign(u) for u in UNITS[:50]]
    counts = Counter(even.assign(u) for u in UNITS)
    assert set(counts) == {"control", "treatment"}
    assert abs(counts["control"] - 50_000) < 1_000  # binomial sd is 158
    three = design(arms={"control": 2, "b": 1, "c": 1})
    counts = Counter(three.assign(u) for u in UNITS)
    assert abs(counts["control"] - 50_000) < 1_000 and abs(counts["b"] - 25_000) < 1_000
    assert three.control == "control" and three.weights == {"control": 2.0, "b": 1.0, "c": 1.0}


def test_raising_traffic_only_adds_units():
    small, large = design(traffic=0.2), design(traffic=0.5)
    before = {u: small.assign(u) for u in UNITS[:20_000]}
    enrolled = {u: arm for u, arm in before.items() if arm is not None}
    assert abs(len(enrolled) - 4_000) < 300
    assert all(large.assign(u) == arm for u, arm in enrolled.items())
    assert sum(large.assign(u) is not None for u in UNITS[:20_000]) == pytest.approx(10_000, abs=400)


def test_a_new_salt_reshuffles_and_experiments_are_independent():
    first, salted = design(), design(salt="restart-2")
    other = ExperimentDesign.from_mapping("checkout-offers", {"arms": ["control", "treatment"]})
    sample = UNITS[:20_000]
    moved = sum(first.assign(u) != salted.assign(u) for u in sample) / len(sample)
    together = sum(first.assign(u) == other.assign(u) for u in sample) / len(sample)
    assert moved == pytest.approx(0.5, abs=0.02) and together == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(("raw", "message"), [
    ({"arms": {"control": 1}}, "at least two entries"),
    ({"arms": {"control": 1, "treatment": 0}}, "arms.treatment.weight must be a positive number"),
    ({"arms": {"control": 1, "treatment": "half"}}, "arms.treatment.weight"),
    ({"arms": ["control", "control"]}, "must be unique"),
    ({"arms": [{"control": 1}, {"treatment": 3}]}, "arms as a list holds arm names only"),
    ({"arms": {"control": 1, "bad name": 1}}, "arm name 'bad name'"),
    ({"arms": {"control": 1, "treatment": 1}, "traffic": 0}, "traffic must be in (0, 1]"),
    ({"arms": {"control": 1, "treatment": 1}, "traffic": 1.5}, "traffic must be in (0, 1]"),
    ({"arms": {"control": 1, "treatment": 1}, "salt": ""}, "salt must be a non-empty string"),
    ({"arms": {"control": 1, "treatment": 1}, "trafic": 0.5}, "unknown field(s) ['trafic']"),
    ({"arms": "control"}, "arms must map arm names to weights"),
])
def test_a_bad_design_names_the_experiment_and_the_field(raw, message):
    with pytest.raises(DesignError) as caught:
        ExperimentDesign.from_mapping("home-recs", raw)
    assert "experiment 'home-recs'" in str(caught.value) and message in str(caught.value)


def test_a_bad_experiment_id_is_refused():
    with pytest.raises(DesignError, match="experiment id 'a b'"):
        ExperimentDesign.from_mapping("a b", {"arms": ["x", "y"]})
