"""Experiment assignment over HTTP, on a real Redis: the arm, and each unit's first exposure logged once."""

from __future__ import annotations

import asyncio

import pytest
import redis
from fastapi.testclient import TestClient

from experiments.ab.assignment import EXPOSURES_STREAM, DesignError, ExperimentDesign
from feature_store import open_limits
from serving.app import create_app
from serving.services.experiments import ExperimentService, load_designs
from serving.settings import ServingSettings
from tests.conftest import redis_url

pytestmark = pytest.mark.redis

DESIGNS = """\
experiments:
  home-recs: {arms: {control: 1, treatment: 1}}
  checkout: {arms: [control, bundles, points], traffic: 0.2, salt: v2}
"""


@pytest.fixture
def designs_file(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text(DESIGNS)
    return path


def client_for(prefix: str, designs_file, **overrides) -> TestClient:
    return TestClient(create_app(ServingSettings(store_url=redis_url(), store_prefix=prefix,
                                                 experiments_path=designs_file, **overrides)))


def exposures(prefix: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url(), decode_responses=True)
    try:
        return [fields for _, fields in client.xrange(f"{prefix}:log:{EXPOSURES_STREAM}")]
    finally:
        client.close()


def test_lists_the_configured_designs(redis_prefix, designs_file):
    with client_for(redis_prefix, designs_file) as client:
        response = client.get("/v1/experiments")
    assert response.status_code == 200
    assert response.json() == {"experiments": [
        {"experiment_id": "home-recs", "control": "control", "arms": {"control": 1.0, "treatment": 1.0},
         "traffic": 1.0},
        {"experiment_id": "checkout", "control": "control",
         "arms": {"control": 1.0, "bundles": 1.0, "points": 1.0}, "traffic": 0.2}]}


def test_the_arm_is_the_designs_and_only_the_first_exposure_is_logged(redis_prefix, designs_file):
    expected = load_designs(designs_file)["home-recs"].assign("40117")
    with client_for(redis_prefix, designs_file) as client:
        first = client.get("/v1/experiments/home-recs/assignments/40117")
        again = client.get("/v1/experiments/home-recs/assignments/40117")
        silent = client.get("/v1/experiments/home-recs/assignments/40502", params={"expose": "false"})
    assert first.status_code == again.status_code == silent.status_code == 200
    assert first.json() == {"experiment_id": "home-recs", "unit_id": "40117", "arm": expected, "enrolled": True,
                            "control": expected == "control", "first_exposure": True, "exposure_logged": True}
    assert again.json()["arm"] == expected and again.json()["first_exposure"] is False
    assert again.json()["exposure_logged"] is True
    assert silent.json()["first_exposure"] is False and silent.json()["arm"] is not None
    assert silent.json()["exposure_logged"] is None
    (logged,) = exposures(redis_prefix)
    assert {k: logged[k] for k in ("experiment_id", "unit_id", "arm")} == {
        "experiment_id": "home-recs", "unit_id": "40117", "arm": expected}
    assert logged["at"].endswith("+00:00") and logged["acquired"] == "0"


def test_a_unit_outside_the_traffic_gets_no_arm_and_no_exposure(redis_prefix, designs_file):
    design = load_designs(designs_file)["checkout"]
    outside = next(f"u{i}" for i in range(1000) if design.assign(f"u{i}") is None)
    with client_for(redis_prefix, designs_file) as client:
        body = client.get(f"/v1/experiments/checkout/assignments/{outside}").json()
    assert body == {"experiment_id": "checkout", "unit_id": outside, "arm": None, "enrolled": False,
                    "control": None, "first_exposure": False, "exposure_logged": None}
    assert exposures(redis_prefix) == []


def test_the_arm_is_answered_while_the_limits_store_is_unreachable(redis_prefix, designs_file):
    expected = load_designs(designs_file)["home-recs"].assign("40117")
    with client_for(redis_prefix, designs_file, limits_url="redis://127.0.0.1:1/0") as client:
        response = client.get("/v1/experiments/home-recs/assignments/40117")
    assert response.status_code == 200
    assert response.json() == {"experiment_id": "home-recs", "unit_id": "40117", "arm": expected, "enrolled": True,
                               "control": expected == "control", "first_exposure": False,
                               "exposure_logged": False}


def test_an_unknown_experiment_is_404_naming_the_configured_ones(redis_prefix, designs_file):
    with client_for(redis_prefix, designs_file) as client:
        response = client.get("/v1/experiments/pricing/assignments/40117")
        too_long = client.get(f"/v1/experiments/home-recs/assignments/{'x' * 129}")
        blank = client.get("/v1/experiments/home-recs/assignments/%20%20")
    assert response.status_code == 404 and blank.status_code == 422
    assert response.json()["detail"] == "experiment 'pricing' is not configured; configured: ['checkout', 'home-recs']"
    assert too_long.status_code == 422


def test_the_experiments_scope_is_required_when_keys_are_configured(redis_prefix, designs_file):
    keys = {"storefront": ["experiments:read"], "marketing": ["segments:read"]}
    with client_for(redis_prefix, designs_file, api_keys=keys) as client:
        allowed = client.get("/v1/experiments", headers={"X-API-Key": "storefront"})
        denied = client.get("/v1/experiments", headers={"X-API-Key": "marketing"})
    assert (allowed.status_code, denied.status_code) == (200, 403)


def test_concurrent_first_requests_log_one_exposure(redis_prefix):
    design = ExperimentDesign.from_mapping("home-recs", {"arms": ["control", "treatment"]})

    async def main():
        service = ExperimentService({"home-recs": design}, open_limits(redis_url(), prefix=redis_prefix))
        try:
            return await asyncio.gather(*(service.assignment("home-recs", "c1") for _ in range(100)))
        finally:
            await service.limits.close()

    answers = asyncio.run(main())
    assert sum(answer["first_exposure"] for answer in answers) == 1
    assert {answer["arm"] for answer in answers} == {design.assign("c1")}
    assert len(exposures(redis_prefix)) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("experiments:\n  home-recs: {arms: {control: 1}}\n", "experiment 'home-recs': arms needs at least two"),
    ("experiments: [home-recs]\n", "expected a mapping 'experiments:"),
    ("experiments: {home-recs: {arms: [a, b]\n", "not valid YAML"),
    ("experiments: {home-recs: {arms: [a, b], starts: 2026-02-30}}\n", "'2026-02-30' is not a valid date"),
])
def test_a_bad_designs_file_stops_the_start_naming_file_and_field(redis_prefix, tmp_path, text, message):
    path = tmp_path / "experiments.yaml"
    path.write_text(text)
    with pytest.raises(DesignError) as caught, client_for(redis_prefix, path):
        pass
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_the_example_designs_the_demo_serves_are_valid():
    from training.cli import EXAMPLE_EXPERIMENTS

    designs = load_designs(EXAMPLE_EXPERIMENTS)
    assert designs["home-recs"].control == "control"
    assert designs["checkout-offers"].weights == {"control": 2.0, "bundles": 1.0, "points": 1.0}
