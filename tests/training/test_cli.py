"""The recsys command end to end on the embedded stores: train, publish, list, roll back."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from experiments.cli import app, main
from feature_store import StoreUnavailableError, open_store
from tests.conftest import redis_url
from training.settings import get_settings
from training.sources import SYNTHETIC_MIN_ITEMS
from training.store import StoreSetupError

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECSYS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RECSYS_STORE_URL", f"sqlite:///{tmp_path / 'store.sqlite'}")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_train_publish_list_and_rollback(env):
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--customers", "400", "--items", "120", "--holdout-days", "60"])
    assert trained.exit_code == 0, trained.output
    assert "Published snapshot" in trained.output and "registered recsys-recommender version 1" in trained.output

    republished = runner.invoke(app, ["publish", "--model", "1"])
    assert republished.exit_code == 0, republished.output

    store = open_store(f"sqlite:///{env / 'store.sqlite'}")
    first, second = [m.snapshot_id for m in reversed(store.list_snapshots())]
    assert store.current_snapshot_id() == second
    # Republishing keeps the customer part of the model's run and the catalogue.
    assert store.get_manifest(second).counts["profile"] == store.get_manifest(first).counts["profile"] > 0
    assert store.get_manifest(second).metadata["offer_catalogue_version"]

    listed = runner.invoke(app, ["snapshots", "list"])
    assert listed.exit_code == 0 and first in listed.output and second in listed.output

    rolled = runner.invoke(app, ["snapshots", "rollback"])
    assert rolled.exit_code == 0 and first in rolled.output
    assert store.current_snapshot_id() == first
    store.close()


def test_bad_catalogue_is_rejected_before_training(env, tmp_path):
    bad = tmp_path / "offers.yaml"
    bad.write_text("offers:\n  - id: x\n    name: X\n    type: teleport\n")
    result = CliRunner().invoke(app, ["train", "--customers", "200", "--catalogue", str(bad)])
    assert result.exit_code != 0
    assert "x" in str(result.exception) and "type" in str(result.exception)


def test_snapshots_list_shows_snapshots_published_by_other_tools(env):
    store = open_store(f"sqlite:///{env / 'store.sqlite'}")
    with store.begin_snapshot() as writer:  # free-form metadata, not recsys's {"name", "version"}
        writer.write("rec", ["c1"], [b"x"])
        sid = writer.commit({"model": "als", "version": 3}).snapshot_id
    store.close()
    listed = CliRunner().invoke(app, ["snapshots", "list"])
    assert listed.exit_code == 0, listed.output
    assert sid in listed.output and "als" in listed.output


def test_models_list_and_promote_by_alias(env):
    runner = CliRunner()
    for seed in ("1", "2"):
        trained = runner.invoke(app, ["train", "--customers", "300", "--items", "100", "--seed", seed,
                                      "--no-customers-job"])
        assert trained.exit_code == 0, trained.output
    # a version trained without publishing is registered without the serving alias, which stays on what is served
    candidate = runner.invoke(app, ["train", "--customers", "300", "--items", "100", "--seed", "3",
                                    "--no-customers-job", "--no-publish"])
    assert candidate.exit_code == 0, candidate.output
    assert "version 3 without an alias: serve it with `recsys models promote 3`" in candidate.output
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.output.splitlines() if line.startswith("version ")]
    assert [(row[1], row[2]) for row in rows] == [("3", "-"), ("2", "@champion"), ("1", "-")]
    for row in rows:  # each version's model and holdout figures, as its training run logged them
        assert row[row.index("model") + 1] == "ranker" and "experiment" not in row
        assert row[row.index("nDCG@10") + 1].startswith("0.") and row[row.index("R@20") + 1].startswith("0.")

    promoted = runner.invoke(app, ["models", "promote", "1"])
    assert promoted.exit_code == 0, promoted.output
    assert "@champion: 2 -> version 1" in promoted.output and "Published snapshot" in promoted.output
    store = open_store(f"sqlite:///{env / 'store.sqlite'}")
    assert store.current_manifest().metadata["model"]["version"] == "1"
    store.close()
    challenger = runner.invoke(app, ["models", "promote", "2", "--alias", "challenger"])
    assert "@challenger: unset -> version 2" in challenger.output and "Published" not in challenger.output
    again = runner.invoke(app, ["models", "list"])
    assert "@challenger" in again.output

    missing = runner.invoke(app, ["models", "promote", "9"])
    assert "has no version or alias '9'; versions 1, 2, 3" in str(missing.exception)


def _champion(env) -> str | None:
    from mlflow.tracking import MlflowClient

    from training import tracking

    tracking.configure_tracking(get_settings())
    version = MlflowClient().get_registered_model("recsys-recommender").aliases.get("champion")
    return None if version is None else str(version)


def test_a_failing_publish_leaves_the_serving_alias_where_it_was(env, tmp_path, monkeypatch):
    runner = CliRunner()
    first = runner.invoke(app, ["train", "--customers", "300", "--items", "60", "--no-customers-job"])
    assert first.exit_code == 0, first.output

    def store_down(*args, **kwargs):
        raise StoreUnavailableError("the store went away")

    with monkeypatch.context() as patched:  # the store answers the check before training, then fails
        patched.setattr("training.jobs.publish_bundle", store_down)
        second = runner.invoke(app, ["train", "--customers", "300", "--items", "60", "--no-customers-job"])
    assert isinstance(second.exception, StoreUnavailableError)
    assert _champion(env) == "1"
    # the error says what the failure left behind, and how to serve it
    assert second.exception.__notes__ == ["model version 2 is registered without the serving alias; serve it "
                                          "with `recsys models promote 2` once the store answers"]

    bad = tmp_path / "offers.yaml"
    bad.write_text("offers:\n  - id: x\n    name: X\n    type: teleport\n")
    refused = runner.invoke(app, ["models", "promote", "2", "--catalogue", str(bad)])
    assert refused.exit_code != 0 and _champion(env) == "1"
    monkeypatch.setenv("RECSYS_STORE_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    get_settings.cache_clear()
    unreachable = runner.invoke(app, ["models", "promote", "2"])
    assert isinstance(unreachable.exception, StoreSetupError) and _champion(env) == "1"


def _exit_and_error(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run the console command as `recsys ARGS`; its exit status and what it wrote to stderr."""
    monkeypatch.setattr("sys.argv", ["recsys", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return stopped.value.code, capsys.readouterr().err


def test_a_store_url_of_no_known_kind_is_refused_before_training(env, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_STORE_URL", "postgres://x")
    get_settings.cache_clear()
    monkeypatch.setattr("training.jobs.load_and_clean", lambda *a, **k: pytest.fail("trained before the check"))
    code, err = _exit_and_error(monkeypatch, capsys, "train", "--customers", "300", "--items", "60")
    assert code == 2 and err.startswith("error: RECSYS_STORE_URL: unsupported online store URL 'postgres://x'")


def test_a_store_that_refuses_the_database_ends_in_one_line(env, redis_prefix, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_STORE_URL", redis_url().rsplit("/", 1)[0] + "/99")  # Redis has 16 databases
    monkeypatch.setenv("RECSYS_STORE_PREFIX", redis_prefix)
    get_settings.cache_clear()
    code, err = _exit_and_error(monkeypatch, capsys, "snapshots", "list")
    assert code == 2 and err.startswith("error: online store ") and "/99" in err and "out of range" in err


def test_invalid_settings_name_each_variable_on_its_own_line(env, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_PUBLISH_TOP_N", "0")
    monkeypatch.setenv("RECSYS_SNAPSHOTS_RETAINED", "many")
    get_settings.cache_clear()
    code, err = _exit_and_error(monkeypatch, capsys, "snapshots", "list")
    lines = err.splitlines()
    assert code == 2 and lines[0] == "error: invalid settings:" and "Traceback" not in err
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == ["RECSYS_PUBLISH_TOP_N",
                                                                       "RECSYS_SNAPSHOTS_RETAINED"]


@pytest.mark.parametrize("command", ["train", "demo", "generate"])
def test_items_below_the_generators_minimum_are_refused_as_an_option(command, env):
    args = [command, *([str(env / "out.csv")] if command == "generate" else [])]
    result = CliRunner().invoke(app, [*args, "--items", str(SYNTHETIC_MIN_ITEMS - 1)])
    assert result.exit_code == 2 and "--items" in result.output


def test_the_generators_minimum_number_of_items_is_accepted(env):
    result = CliRunner().invoke(app, ["generate", str(env / "out.csv"), "--customers", "20",
                                      "--items", str(SYNTHETIC_MIN_ITEMS)])
    assert result.exit_code == 0, result.output


def test_the_serving_alias_follows_what_publish_rollback_and_use_serve(env, monkeypatch):
    runner = CliRunner()
    for seed in ("1", "2"):
        trained = runner.invoke(app, ["train", "--customers", "300", "--items", "100", "--seed", seed,
                                      "--no-customers-job"])
        assert trained.exit_code == 0, trained.output
    store = open_store(f"sqlite:///{env / 'store.sqlite'}")

    def served() -> tuple[str, str | None]:
        model = store.current_manifest().metadata["model"]
        return model["version"], model["alias"]

    assert served() == ("2", "champion") and _champion(env) == "2"
    republished = runner.invoke(app, ["publish", "--model", "1"])
    assert republished.exit_code == 0 and "@champion: 2 -> version 1" in republished.output, republished.output
    assert served() == ("1", "champion") and _champion(env) == "1"
    rolled = runner.invoke(app, ["snapshots", "rollback"])
    assert rolled.exit_code == 0 and "@champion: 1 -> version 2" in rolled.output, rolled.output
    assert served() == ("2", "champion") and _champion(env) == "2"
    latest = store.list_snapshots()[0].snapshot_id
    used = runner.invoke(app, ["snapshots", "use", latest])
    assert used.exit_code == 0 and "@champion: 2 -> version 1" in used.output and _champion(env) == "1"

    # with the registry failing, the switch still happens and says how to mend the alias
    from training import tracking

    def registry_down(*args, **kwargs):
        raise ConnectionError("registry unreachable")

    monkeypatch.setattr(tracking, "set_alias", registry_down)
    rolled = runner.invoke(app, ["snapshots", "rollback"])
    assert rolled.exit_code == 0 and "warning: @champion still names" in rolled.output
    assert "recsys models promote 2 --no-publish" in rolled.output and served() == ("2", "champion")
    store.close()


def test_the_error_line_of_a_failed_publish_says_how_to_serve_the_registered_version(env, monkeypatch, capsys):
    def store_down(*args, **kwargs):
        raise StoreUnavailableError("the store went away")

    monkeypatch.setattr("training.jobs.publish_bundle", store_down)
    code, err = _exit_and_error(monkeypatch, capsys, "train", "--customers", "300", "--items", "60",
                                "--no-customers-job")
    assert code == 2 and "error: the store went away" in err
    assert "model version 1 is registered without the serving alias" in err and "recsys models promote 1" in err


def _customers_csv(path, n_customers: int):
    """Three to five two-line orders per customer over 2024's first 200 days, seeded."""
    rng = np.random.default_rng(0)
    rows = ["customer_id,item_id,timestamp,quantity,unit_price,order_id"]
    for customer in range(n_customers):
        for order in range(3 + customer % 3):
            day = np.datetime64("2024-01-01") + int(rng.integers(0, 200))
            rows += [f"{1000 + customer},I{item},{day},{rng.integers(1, 5)},{rng.uniform(1, 10):.2f},"
                     f"o{customer}-{order}" for item in rng.choice(30, size=2, replace=False)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_dozen_customers_are_clustered_with_k_each_stability_half_holds(env, monkeypatch, capsys):
    data = _customers_csv(env / "twelve.csv", 12)
    code, err = _exit_and_error(monkeypatch, capsys, "train", "--data", str(data), "--no-publish")
    assert code == 0, err


def test_too_few_customers_to_cluster_end_in_one_line_and_status_2(env, monkeypatch, capsys):
    data = _customers_csv(env / "six.csv", 6)
    code, err = _exit_and_error(monkeypatch, capsys, "train", "--data", str(data), "--no-publish")
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: no k in [4, 5, 6, 7, 8] fits 6 customers")
