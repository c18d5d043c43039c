"""MLflow: the one place that starts runs, logs to them and moves registry aliases."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recsys.numerics import numeric_environment
from training.settings import TrainingSettings


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    alias: str | None


#: what configure_tracking last put in each MLflow variable, and whether the user had given that value:
#: mlflow.set_tracking_uri and set_registry_uri write the environment too, and a later call must not
#: mistake those writes for the user's choice
_WRITTEN: dict[str, tuple[str, bool]] = {}


def configure_tracking(settings: TrainingSettings) -> str:
    """Use ``MLFLOW_TRACKING_URI`` (and ``MLFLOW_REGISTRY_URI``) when the user set them, otherwise an
    embedded SQLite file under ``var/``."""
    uri = _users("MLFLOW_TRACKING_URI") or settings.default_tracking_uri
    registry = _users("MLFLOW_REGISTRY_URI") or uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _WRITTEN.update({"MLFLOW_TRACKING_URI": (uri, uri == _users("MLFLOW_TRACKING_URI")),
                     "MLFLOW_REGISTRY_URI": (registry, registry == _users("MLFLOW_REGISTRY_URI"))})
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    return uri


def _users(name: str) -> str | None:
    """The variable's value unless it is one configure_tracking wrote on its own account."""
    value = os.environ.get(name)
    written = _WRITTEN.get(name)
    if value is None or (written is not None and written[0] == value and not written[1]):
        return None
    return value


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking store or registry cannot be used: its server does not answer, or its database
    needs a driver that is not installed."""


class InvalidAliasError(ValueError):
    """A registry alias MLflow refuses: a character it does not allow, or a name it reserves."""


#: MLflow retries a failed HTTP call for minutes by default; a check wants one quick answer
_QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def answering_quickly() -> AbstractContextManager[None]:
    """MLflow HTTP calls in this block try once and wait at most 10 s, instead of retrying for minutes."""
    return _environment(_QUICK_HTTP)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_tracking(settings: TrainingSettings) -> None:
    """Raise :class:`TrackingUnavailableError` unless the tracking store and the registry each answer one
    cheap call: a server that is down or a missing database driver is then reported before any work,
    not after it (or after minutes of retries)."""
    from feature_store.multiplexed import without_password

    tracking_uri = configure_tracking(settings)
    for label, variable, uri, call in (
            ("tracking store", "MLFLOW_TRACKING_URI", tracking_uri, "search_experiments"),
            ("model registry", "MLFLOW_REGISTRY_URI", mlflow.get_registry_uri(), "search_registered_models")):
        try:
            with answering_quickly():
                getattr(MlflowClient(), call)(max_results=1)  # the client opens the store: a driver is needed
        except ImportError as exc:
            raise TrackingUnavailableError(
                f"MLflow {label} {without_password(uri)} ({variable}) needs a database driver that is not "
                f"installed ({exc}); for PostgreSQL install the 'postgres' extra: pip install -e '.[postgres]'"
            ) from exc
        except MlflowException as exc:
            raise TrackingUnavailableError(
                f"MLflow {label} {without_password(uri)} ({variable}) cannot be used: {exc.message}") from exc


def check_alias(alias: str, source: str) -> str:
    """``alias`` if MLflow accepts it as a registry alias; else :class:`InvalidAliasError` naming
    ``source``, the option or variable it came from."""
    # MLflow's own rules, which it offers no public check for; constraints.txt pins the version
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved

    try:
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
    except MlflowException as exc:
        raise InvalidAliasError(f"{source}: {exc.message}") from exc
    return alias


class DeletedExperimentError(LookupError):
    """The MLflow experiment runs should go to is deleted: MLflow refuses runs in it and keeps its name."""


def ensure_experiment(name: str, settings: TrainingSettings) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise DeletedExperimentError(_deleted_message(name, experiment.experiment_id))
    if experiment is not None:
        return experiment.experiment_id
    uri = mlflow.get_tracking_uri()
    artifact_location = None
    if uri.startswith("sqlite:///"):
        # Keep artifacts beside the embedded database instead of a ./mlruns in whatever cwd.
        artifact_location = (settings.var_dir / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=artifact_location)


def _deleted_message(name: str, experiment_id: str) -> str:
    # the embedded database is not in the user's environment: the restore command must name it
    uri = "" if _users("MLFLOW_TRACKING_URI") else f"MLFLOW_TRACKING_URI={mlflow.get_tracking_uri()} "
    return (f"MLflow experiment {name!r} (id {experiment_id}) is deleted: restore it with "
            f"`{uri}mlflow experiments restore --experiment-id {experiment_id}` or choose another experiment name")


@contextmanager
def training_run(settings: TrainingSettings, run_name: str, tags: Mapping[str, str] | None = None,
                 experiment: str | None = None, nested: bool = False) -> Iterator[mlflow.ActiveRun]:
    configure_tracking(settings)
    experiment_id = ensure_experiment(experiment or settings.mlflow_experiment, settings)
    # Every run says which CPU and numeric kernels it ran on: they decide the last bits of each fit.
    tags = {**numeric_environment(), **(tags or {})}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags, nested=nested) as run:
        yield run


def log_params(params: Mapping[str, Any], prefix: str = "") -> None:
    flat = {f"{prefix}{key}": value for key, value in _flatten(params).items()}
    if flat:
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})


def log_metrics(metrics: Mapping[str, float], prefix: str = "", step: int | None = None) -> None:
    """Log finite numbers; MLflow metric names may not contain '@', so ``ndcg@10`` becomes ``ndcg_at_10``."""
    clean = {}
    for key, value in metrics.items():
        if value is None or not isinstance(value, int | float) or not math.isfinite(float(value)):
            continue
        clean[f"{prefix}{key}".replace("@", "_at_")] = float(value)
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_artifacts(folder: Path, artifact_path: str | None = None) -> None:
    """Log every file under ``folder`` to the active run."""
    mlflow.log_artifacts(str(folder), artifact_path)


def log_files(folder: Path, files: list[Path]) -> None:
    """Log ``files`` (under ``folder``) to the active run at their paths relative to ``folder``; other
    files in the folder, such as an earlier run's plots, are left out."""
    for path in files:
        parent = path.relative_to(folder).parent
        mlflow.log_artifact(str(path), artifact_path=None if parent == Path() else parent.as_posix())


def register_bundle(run_id: str, artifact_path: str, model_name: str, description: str = "") -> RegisteredVersion:
    """Register the run's artifact folder as a new version of ``model_name``, without an alias: the serving
    alias moves only once the version is published (:func:`set_alias`)."""
    client = MlflowClient()
    try:
        client.get_registered_model(model_name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(model_name, description=description or None)
    source = f"{mlflow.get_run(run_id).info.artifact_uri}/{artifact_path}"
    version = client.create_model_version(model_name, source=source, run_id=run_id)
    return RegisteredVersion(model_name, str(version.version), run_id, None)


def set_alias(model_name: str, alias: str, version: str) -> str | None:
    """Point ``alias`` at ``version`` (which must exist); the version it pointed at before, if any."""
    resolve_version(model_name, version)
    client = MlflowClient()
    previous = client.get_registered_model(model_name).aliases.get(alias)
    client.set_registered_model_alias(model_name, alias, version)
    return None if previous is None else str(previous)


@dataclass(frozen=True)
class VersionSummary:
    version: str
    aliases: list[str]
    run_id: str
    created: datetime
    metrics: dict[str, float]  # the run's holdout metrics, without the "holdout." prefix
    model: str  # the personal recommender's registry name ("" when the run did not log it)
    experiment_run_id: str  # the experiment run that chose it ("" when none did)
    experiment_setting: str


@contextmanager
def missing_as(error: Exception | Callable[[], Exception],
               codes: tuple[str, ...] = ("RESOURCE_DOES_NOT_EXIST",)) -> Iterator[None]:
    """MLflow's "no such run, model or version" (``codes``) inside the block raised as ``error`` (or what
    ``error()`` builds, for a message that needs more calls) instead, which a command reports in one
    line; any other MLflow failure passes through."""
    try:
        yield
    except MlflowException as exc:
        if exc.error_code not in codes:
            raise
        raise (error() if callable(error) else error) from None


def list_versions(model_name: str) -> list[VersionSummary]:
    """Every registered version, newest first, with its aliases and its training run's holdout metrics."""
    client = MlflowClient()
    with missing_as(UnknownModelVersionError(f"registered model {model_name!r} does not exist: train first")):
        model = client.get_registered_model(model_name)
    aliases: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name='{model_name}'")
    runs = _runs_by_id(client, [version.run_id for version in versions])
    summaries = []
    for version in versions:
        run = runs.get(version.run_id)
        data = run.data if run else None
        metrics, params, tags = (data.metrics, data.params, data.tags) if data else ({}, {}, {})
        summaries.append(VersionSummary(
            str(version.version), sorted(aliases.get(str(version.version), [])), version.run_id or "",
            datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
            {key.removeprefix("holdout."): value for key, value in metrics.items() if key.startswith("holdout.")},
            params.get("roles.personal.model", ""), tags.get("experiment_run_id", ""),
            tags.get("experiment_setting", "")))
    return sorted(summaries, key=lambda s: -int(s.version))


def _runs_by_id(client: MlflowClient, run_ids: list[str | None], batch: int = 100) -> dict[str, Run]:
    """The runs behind ``run_ids``, found with one search per ``batch`` ids rather than one request per
    version (a remote tracking server answers each); a run removed for good is simply absent."""
    wanted = sorted({run_id for run_id in run_ids if run_id})
    if not wanted:
        return {}
    experiments, token = [], None
    while True:
        page = client.search_experiments(view_type=ViewType.ALL, page_token=token)
        experiments += [experiment.experiment_id for experiment in page]
        token = page.token
        if not token:
            break
    found = {}
    for start in range(0, len(wanted), batch):
        chunk = wanted[start:start + batch]
        listed = ", ".join(f"'{run_id}'" for run_id in chunk)
        for run in client.search_runs(experiments, f"attributes.run_id IN ({listed})", run_view_type=ViewType.ALL,
                                      max_results=len(chunk)):
            found[run.info.run_id] = run
    return found


class UnknownModelVersionError(LookupError):
    """The registry has no such version or alias of the model."""


def resolve_version(model_name: str, alias_or_version: str) -> RegisteredVersion:
    client = MlflowClient()
    # a missing version is RESOURCE_DOES_NOT_EXIST, a missing alias INVALID_PARAMETER_VALUE
    with missing_as(lambda: UnknownModelVersionError(f"registered model {model_name!r} has no version or alias "
                                                     f"{alias_or_version!r}{_known_versions(client, model_name)}"),
                    ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")):
        if alias_or_version.isdigit():
            version = client.get_model_version(model_name, alias_or_version)
            alias = None
        else:
            version = client.get_model_version_by_alias(model_name, alias_or_version)
            alias = alias_or_version
    return RegisteredVersion(model_name, str(version.version), version.run_id, alias)


def _known_versions(client: MlflowClient, model_name: str) -> str:
    try:
        model = client.get_registered_model(model_name)
    except MlflowException:
        return " (the model is not registered: train first)"
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{model_name}'"))
    aliases = ", ".join(f"@{alias} = {version}" for alias, version in sorted(model.aliases.items()))
    return f"; versions {', '.join(map(str, versions)) or 'none'}" + (f"; aliases {aliases}" if aliases else "")


def download_run_artifacts(run_id: str, artifact_path: str, destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    # MLflow's own progress bars would interleave with the command's steps and its error lines
    with _environment({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                        dst_path=str(destination)))


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
