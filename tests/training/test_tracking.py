"""Where MLflow runs go: the user's MLFLOW_* variables, else the embedded database of the settings."""

from __future__ import annotations

import mlflow
import pytest

from training import tracking
from training.errors import input_errors
from training.settings import TrainingSettings


def test_a_second_configuration_follows_its_own_settings_not_the_variables_mlflow_wrote(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    first = tracking.configure_tracking(TrainingSettings(var_dir=tmp_path / "a"))
    # mlflow.set_tracking_uri / set_registry_uri wrote both variables; they are not the user's choice
    second = tracking.configure_tracking(TrainingSettings(var_dir=tmp_path / "b"))
    assert first != second and second.endswith("/b/mlflow.db")
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == second


def test_the_users_variables_win_and_stay_the_users(tmp_path, monkeypatch):
    chosen, registry = f"sqlite:///{tmp_path / 'chosen.db'}", f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", chosen)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    for var_dir in ("a", "b"):
        assert tracking.configure_tracking(TrainingSettings(var_dir=tmp_path / var_dir)) == chosen
        assert mlflow.get_registry_uri() == registry
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    assert tracking.configure_tracking(TrainingSettings(var_dir=tmp_path / "c")).endswith("/c/mlflow.db")


def test_a_deleted_experiment_is_refused_with_the_way_to_restore_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    settings = TrainingSettings(var_dir=tmp_path / "var", mlflow_experiment="gone")
    uri = tracking.configure_tracking(settings)
    experiment_id = tracking.ensure_experiment("gone", settings)
    mlflow.delete_experiment(experiment_id)
    with pytest.raises(tracking.DeletedExperimentError) as refused, tracking.training_run(settings, "train"):
        pass
    # the embedded database is not in the user's environment, so the command names it
    assert f"`MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id {experiment_id}`" in str(
        refused.value)
    assert isinstance(refused.value, input_errors())
