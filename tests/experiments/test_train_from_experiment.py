"""An experiment's choice, trained: the parent run's winners.json, read back by `recsys train --from-experiment`."""

from __future__ import annotations

import json
import os

import mlflow
import pytest
from typer.testing import CliRunner

from experiments.cli import app, main
from tests.experiments.conftest import SMALL_CONFIG, write_config
from training.experiment_winner import WINNERS_ARTIFACT, read_winner
from training.settings import get_settings

pytestmark = pytest.mark.slow


_MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture
def isolated_settings(tmp_path, monkeypatch):
    # not monkeypatch for these: MLflow writes both variables when tracking is configured, and restoring
    # an earlier value after this test would hand the next test a stale store as if the user chose it
    for name in _MLFLOW_VARIABLES:
        os.environ.pop(name, None)
    monkeypatch.setenv("RECSYS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RECSYS_STORE_URL", f"sqlite:///{tmp_path / 'store.sqlite'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    for name in _MLFLOW_VARIABLES:
        os.environ.pop(name, None)


@pytest.fixture
def experiment(synthetic_folder, tmp_path, isolated_settings):
    """A run whose winners differ by setting: weighted EASE with a grid, and popularity, on binary weighting;
    its parent run id and output folder."""
    config = {**SMALL_CONFIG, "data": {**SMALL_CONFIG["data"], "weighting": "binary"},
              "models": [{"model": "popularity"}, {"model": "ease", "params": {"l2": [5.0, 500.0]}}]}
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["experiment", "run", str(write_config(tmp_path, config)), "--data",
                                      str(synthetic_folder / "transactions.csv"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[3] for line in result.output.splitlines() if line.startswith("MLflow parent run "))
    return run_id, out


def _winners_by_table(out) -> dict[str, tuple[str, dict]]:
    """Each setting's first row of the comparison table (sorted by validation score): model and params."""
    import pandas as pd

    table = pd.read_csv(out / "comparison.csv")
    return {s: (rows.iloc[0]["model"], json.loads(rows.iloc[0]["params"])) for s, rows in table.groupby("setting")}


def test_the_parent_run_logs_each_settings_winner_with_exact_parameters(experiment):
    run_id, out = experiment
    logged = json.loads((out / WINNERS_ARTIFACT).read_text())
    assert logged["format"] == 1 and set(logged["winners"]) == {"A", "B"}
    for setting, (label, params) in _winners_by_table(out).items():
        winner = read_winner(run_id, setting)
        assert (winner.label, winner.model, winner.params) == (label, label, params)
        assert winner.weighting == "binary" and winner.selected_by == "validation ndcg@10"
        assert winner.validation_score == pytest.approx(logged["winners"][setting]["validation_score"])


def test_train_fits_the_winner_on_its_weighting_and_tags_the_run(experiment, isolated_settings):
    run_id, out = experiment
    label, params = _winners_by_table(out)["A"]
    result = CliRunner().invoke(app, ["train", "--customers", "300", "--items", "60", "--holdout-days", "60",
                                      "--no-publish", "--no-customers-job", "--from-experiment", run_id])
    assert result.exit_code == 0, result.output
    assert f"Personal model from experiment run {run_id} (setting A): {label}" in " ".join(result.output.split())
    train = mlflow.search_runs(experiment_names=["recsys"], filter_string="tags.job = 'train'",
                               output_format="list")[0]
    assert train.data.tags["experiment_run_id"] == run_id and train.data.tags["experiment_winner"] == label
    assert train.data.params["roles.personal.model"] == label
    assert train.data.params["weighting"] == "binary"
    for key, value in params.items():
        assert train.data.params[f"roles.personal.{key}"] == str(value)
    listed = CliRunner().invoke(app, ["models", "list"])
    row = next(line for line in listed.output.splitlines() if line.startswith("version 1 "))
    assert f"model {label} " in row and row.endswith(f"chosen by experiment run {run_id[:12]} (setting A)")


@pytest.mark.parametrize("case", ["missing run", "train run", "no winners file", "setting not chosen"])
def test_a_run_that_chose_nothing_for_the_setting_is_one_error_line(case, experiment, synthetic_folder, tmp_path,
                                                                       monkeypatch, capsys):
    run_id, _ = experiment
    if case == "missing run":
        run_id = "0" * 32
        expected = f"MLflow run '{run_id}' does not exist"
    elif case == "train run":
        with mlflow.start_run(tags={"job": "train"}) as run:
            run_id = run.info.run_id
        expected = "is a train run, not the parent run of 'recsys experiment run'"
    elif case == "no winners file":
        with mlflow.start_run(tags={"job": "experiment"}) as run:
            run_id = run.info.run_id
        expected = f"experiment run '{run_id}' logged no winners.json"
    else:
        config = {**SMALL_CONFIG, "settings": ["A"], "models": [{"model": "popularity"}]}
        ran = CliRunner().invoke(app, ["experiment", "run", str(write_config(tmp_path, config)), "--data",
                                       str(synthetic_folder / "transactions.csv")])
        run_id = next(line.split()[3] for line in ran.output.splitlines() if line.startswith("MLflow parent run "))
        expected = f"experiment run '{run_id}' chose winners for setting(s) A, not 'B'"
    monkeypatch.setattr("sys.argv", ["recsys", "train", "--customers", "300", "--items", "60", "--no-publish",
                                     "--from-experiment", run_id, "--setting", "B"])
    monkeypatch.setattr("training.jobs.load_and_clean", lambda *a, **k: pytest.fail("trained before the check"))
    with pytest.raises(SystemExit) as stopped:
        main()
    err = " ".join(capsys.readouterr().err.split())
    assert stopped.value.code == 2 and err.startswith("error: ") and expected in err, err


def test_an_unknown_setting_is_refused_as_an_option(isolated_settings):
    result = CliRunner().invoke(app, ["train", "--from-experiment", "x", "--setting", "C"])
    assert result.exit_code == 2 and "--setting" in result.output


@pytest.mark.parametrize(("winner", "named"), [
    ({"model": "ease", "params": {"lambda": 3.0}}, "has no parameter(s) 'lambda'"),
    ({"model": "slim", "params": {}}, "unknown model 'slim'"),
    ({"model": "ease", "params": {}, "weighting": "minutes"}, "weighting='minutes' is not one of"),
])
def test_a_choice_this_release_cannot_train_is_one_error_line_before_loading(winner, named, isolated_settings,
                                                                           monkeypatch, capsys):
    from training import tracking

    tracking.configure_tracking(get_settings())
    chosen = {"setting": "A", "label": "picked", "weighting": "orders", "selected_by": "validation ndcg@10",
              "validation_score": 0.5, **winner}
    with mlflow.start_run(tags={"job": "experiment"}) as run:
        mlflow.log_dict({"format": 1, "winners": {"A": chosen}}, WINNERS_ARTIFACT)
    monkeypatch.setattr("sys.argv", ["recsys", "train", "--no-publish", "--from-experiment", run.info.run_id])
    monkeypatch.setattr("training.jobs.load_and_clean", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(SystemExit) as stopped:
        main()
    err = " ".join(capsys.readouterr().err.split())
    assert stopped.value.code == 2, err
    # the store this test made is new, and MLflow logs creating it before the command's one error line
    assert (f"error: experiment run '{run.info.run_id}' chose 'picked' for setting A, which this release cannot "
            "train: ") in err and named in err and "Traceback" not in err, err
