"""Where MLflow runs go: the user's MLFLOW_* variables, else the embedded database of the settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import mlflow
import pytest
from mlflow.tracking import MlflowClient

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


@pytest.fixture
def postgres_uri():
    """A database of this test's own on the PostgreSQL at 127.0.0.1:5432 (trust auth), dropped after it."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL answers at 127.0.0.1:5432 with trust auth ({exc})")
    name = f"recsys_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.slow
def test_runs_and_the_registry_live_on_a_postgresql_tracking_store(postgres_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres_uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    settings = TrainingSettings(var_dir=tmp_path / "var", mlflow_experiment="on-postgres")
    tracking.check_tracking(settings)
    with tracking.training_run(settings, "pg") as run:
        tracking.log_params({"model": {"factors": 64}})
        tracking.log_metrics({"ndcg@10": 0.25})
    stored = MlflowClient().get_run(run.info.run_id).data
    assert stored.params == {"model.factors": "64"} and stored.metrics == {"ndcg_at_10": 0.25}
    assert mlflow.get_registry_uri() == postgres_uri


def test_an_unreachable_tracking_server_is_one_error_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    started = time.perf_counter()
    with pytest.raises(tracking.TrackingUnavailableError,
                       match=r"MLflow tracking store http://127.0.0.1:1 \(MLFLOW_TRACKING_URI\) cannot be used"):
        tracking.check_tracking(TrainingSettings(var_dir=tmp_path / "var"))
    # one try, not MLflow's default minutes of retries
    assert time.perf_counter() - started < 30
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") is None


def test_a_tracking_uri_whose_driver_is_missing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mssql+pyodbc://user@127.0.0.1:1/db")
    with pytest.raises(tracking.TrackingUnavailableError, match=r"needs a database driver that is not installed"):
        tracking.check_tracking(TrainingSettings(var_dir=tmp_path / "var"))


@pytest.mark.parametrize("alias", ["v3", "latest", "LATEST", "bad alias!"])
def test_an_alias_mlflow_refuses_names_where_it_came_from(alias):
    with pytest.raises(tracking.InvalidAliasError, match=r"^RECSYS_MODEL_ALIAS: "):
        tracking.check_alias(alias, "RECSYS_MODEL_ALIAS")
    assert tracking.check_alias("champion", "RECSYS_MODEL_ALIAS") == "champion"


def test_runs_are_found_by_id_across_experiments_in_batches_and_removed_ones_are_absent(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    uri = tracking.configure_tracking(TrainingSettings(var_dir=tmp_path / "var"))
    client = MlflowClient()
    ids = []
    for name in ("first", "second", "second"):
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "holdout.ndcg_at_10", 0.25)
        ids.append(run.info.run_id)
    client.delete_run(ids[1])  # deleted, not yet removed: still listed
    gone = client.create_run(client.get_experiment_by_name("first").experiment_id).info.run_id
    client.delete_run(gone)
    subprocess.run([sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", uri, "--run-ids", gone],
                   check=True, capture_output=True)
    found = tracking._runs_by_id(client, [*ids, gone, None, ids[0]], batch=2)
    assert sorted(found) == sorted(ids)
    assert all(run.data.metrics == {"holdout.ndcg_at_10": 0.25} for run in found.values())
    assert tracking._runs_by_id(client, [None]) == {}
