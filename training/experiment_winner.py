"""What an offline experiment chose, written by ``recsys experiment run`` and read by ``recsys train``.

An experiment's parent run logs ``winners.json``: for each setting, the model and the exact parameters
that won on validation, and the interaction weighting they were chosen on. ``recsys train
--from-experiment RUN_ID`` fits that choice as the personal recommender, so what is served is what the
experiment selected, with no parameter copied by hand.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from recsys.data.interactions import check_weighting
from training import tracking
from training.pipeline import ModelSpec, TrainConfig

WINNERS_ARTIFACT = "winners.json"
WINNERS_FORMAT = 1


class ExperimentWinnerError(LookupError):
    """The run is missing, is not an experiment run, or chose nothing for the setting asked for."""


@dataclass(frozen=True)
class ExperimentWinner:
    """One setting's winner: the configuration with the best validation selection metric."""

    setting: str
    label: str
    model: str
    params: dict[str, Any]
    weighting: str
    selected_by: str
    validation_score: float


def winners_document(winners: Iterable[ExperimentWinner]) -> dict[str, Any]:
    return {"format": WINNERS_FORMAT, "winners": {winner.setting: asdict(winner) for winner in winners}}


def read_winner(run_id: str, setting: str) -> ExperimentWinner:
    """The winner of ``setting`` that experiment run ``run_id`` logged (tracking must be configured)."""
    with tracking.missing_as(ExperimentWinnerError(f"MLflow run {run_id!r} does not exist in this tracking store")):
        run = MlflowClient().get_run(run_id)
    job = run.data.tags.get("job")
    if job != "experiment":
        raise ExperimentWinnerError(f"MLflow run {run_id!r} is a {job or 'untagged'} run, not the parent run of "
                                    "'recsys experiment run' (whose id that command prints at the end)")
    no_winners = ExperimentWinnerError(f"experiment run {run_id!r} logged no {WINNERS_ARTIFACT} (it failed before "
                                       "choosing, or an earlier release ran it): run it again")
    with tempfile.TemporaryDirectory() as tmp, tracking.missing_as(no_winners):
        path = tracking.download_run_artifacts(run_id, WINNERS_ARTIFACT, Path(tmp))
        document = json.loads(path.read_text())
    if document.get("format") != WINNERS_FORMAT:
        raise ExperimentWinnerError(f"{WINNERS_ARTIFACT} of run {run_id!r} has format {document.get('format')!r}; "
                                    f"this release reads format {WINNERS_FORMAT}")
    winners = document["winners"]
    if setting not in winners:
        raise ExperimentWinnerError(f"experiment run {run_id!r} chose winners for setting(s) "
                                    f"{', '.join(sorted(winners))}, not {setting!r}")
    return ExperimentWinner(**winners[setting])


def train_config_with_winner(config: TrainConfig, run_id: str, setting: str) -> tuple[TrainConfig, ExperimentWinner]:
    """``config`` with the winner of experiment run ``run_id`` as its personal model, fitted on the
    weighting it was chosen on; the training run is tagged with where the choice came from. Tracking
    must be configured (the train job's preflight checks it first)."""
    winner = read_winner(run_id, setting)
    personal = ModelSpec(winner.model, dict(winner.params))
    # built once here, so that a choice this release cannot make is reported before the data is loaded
    try:
        personal.build()
        check_weighting(winner.weighting)
    except ValueError as exc:
        raise ExperimentWinnerError(f"experiment run {run_id!r} chose {winner.label!r} for setting {setting}, "
                                    f"which this release cannot train: {exc}") from None
    roles = {**config.roles, "personal": personal}
    tags = {**config.tags, "experiment_run_id": run_id, "experiment_setting": setting,
            "experiment_winner": winner.label}
    return replace(config, roles=roles, weighting=winner.weighting, tags=tags), winner
