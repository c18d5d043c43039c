from __future__ import annotations

import pytest
from typer.testing import CliRunner

from experiments.cli import app
from tests.experiments.conftest import SMALL_CONFIG, write_config
from training.settings import get_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def isolated_settings(var_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECSYS_VAR_DIR", str(var_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_run_prints_the_table_and_one_result_line_per_setting(synthetic_folder, tmp_path, var_dir,
                                                               isolated_settings):
    config = {**SMALL_CONFIG, "models": [{"model": "popularity"}, {"model": "ease", "params": {"l2": 50.0}}]}
    path = write_config(tmp_path, config)
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--data",
                                      str(synthetic_folder / "transactions.csv")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("| setting | model |") for line in lines)
    results = [line for line in lines if line.startswith("RESULT ")]
    assert [line.split()[1] for line in results] == ["setting=A", "setting=B"]
    assert (var_dir / "mlflow.db").exists()


def test_a_bad_config_exits_2_naming_file_and_field(tmp_path, isolated_settings):
    path = write_config(tmp_path, {**SMALL_CONFIG, "settings": ["Z"]})
    result = CliRunner().invoke(app, ["experiment", "run", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output and "settings.0" in result.output


def test_training_commands_stay_on_the_composed_app():
    names = {command.name or command.callback.__name__ for command in app.registered_commands}
    assert "train" in names
    assert "experiment" in {group.name for group in app.registered_groups}
