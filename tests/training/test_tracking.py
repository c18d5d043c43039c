"""Where MLflow runs go: the user's MLFLOW_* variables, else the embedded database of the settings."""

from __future__ import annotations

import mlflow

from training import tracking
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
