from datetime import UTC, datetime

import pytest
import yaml
from typer.testing import CliRunner

from feature_store import open_store
from recsys.offers import parse_catalogue
from tests.serving.offers_fixture import catalogue_data, publish_with_offers
from training.offers_cli import NothingToPreviewError, app, preview_eligible

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}", prefix="t")
    yield store
    store.close()


def test_preview_counts_eligible_customers_on_the_current_snapshot(store):
    with pytest.raises(NothingToPreviewError, match="no snapshot"):
        preview_eligible(store)
    publish_with_offers(store, with_catalogue=False)
    with pytest.raises(NothingToPreviewError, match="no offer catalogue"):
        preview_eligible(store)
    manifest = publish_with_offers(store)
    result = preview_eligible(store, now=NOW)
    assert result.snapshot_id == manifest.snapshot_id and result.customers == 3
    # c3 has no recommendation, so no bundle: serving never offers one without its item
    assert result.eligible == {"winback": 1, "vip": 1, "bundle": 2, "first-repeat": 1}
    draft = catalogue_data()
    draft["offers"][1]["eligibility"] = {"segments": ["champions", "new"]}
    assert preview_eligible(store, parse_catalogue(draft), NOW).eligible["vip"] == 2


def test_validate_command(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(catalogue_data()))
    data = catalogue_data()
    data["offers"][2]["prior"] = {"redemption_rate": 2}
    bad.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(good)])
    assert ok.exit_code == 0 and parse_catalogue(catalogue_data()).version in ok.output
    failed = runner.invoke(app, ["validate", str(bad)])
    assert failed.exit_code == 1 and "offer 'bundle': prior.redemption_rate" in failed.output
