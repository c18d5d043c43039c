"""Run an experiment config: tune on validation, refit the choices on train+validation, score once on test.

One MLflow parent run holds a child run per candidate (a grid point or an Optuna trial, scored on the
validation fold under every setting) and a child run per refit (scored on the test fold under the
settings that chose it). Selection never looks at test: for each setting and model the candidate with
the best validation selection metric is kept, and the setting's winner is the model whose kept
candidate is best on validation. The comparison table, its curves and plots are artifacts of the parent.

Everything that could vary between two runs of one config is seeded (NumPy's global generator, the
Optuna sampler, the models' ``random_state`` where the config sets it), ties are broken by config
order, and timings stay out of the table, so the same config gives the same table and figures.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import plots
from experiments.config import ExperimentConfig, ModelConfig, parse_metric
from experiments.folds import make_folds
from experiments.outputs import prepare_output_folder
from recsys.data import clean_transactions
from recsys.evaluation import Fold, evaluate
from recsys.models.base import Recommender
from recsys.models.registry import create_model
from training import tracking
from training.experiment_winner import WINNERS_ARTIFACT, ExperimentWinner, winners_document
from training.settings import TrainingSettings
from training.sources import DataSource, load_source

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    """One configuration of one model entry, scored on the validation fold under every setting."""

    label: str
    model: str
    params: dict[str, Any]
    name: str
    validation: dict[str, dict[str, float]]
    order: int


@dataclass(frozen=True)
class Choice:
    """A setting's selected candidate of one model entry and its single test score."""

    setting: str
    candidate: Candidate
    test: dict[str, float]
    curve: dict[str, list[float]]


@dataclass
class ExperimentResult:
    run_id: str
    table: pd.DataFrame
    candidates: pd.DataFrame
    curves: pd.DataFrame
    winners: dict[str, Choice]
    result_lines: list[str]
    artifacts: list[str] = field(default_factory=list)


def run_experiment(config: ExperimentConfig, settings: TrainingSettings, report: Reporter = lambda _: None,
                   config_text: str | None = None, output_dir: Path | None = None) -> ExperimentResult:
    """Run ``config`` end to end under one MLflow parent run and return its table and RESULT lines."""
    if output_dir is not None:
        prepare_output_folder(output_dir)
    tracking.check_tracking(settings)  # a tracking server that is down: one error now, not after the models
    _seed_everything(config.seed)
    report(f"Loading {config.data.path} ({config.data.format})")
    raw = load_source(DataSource(path=str(config.data.path), format=config.data.format))
    cleaned = clean_transactions(raw, config.data.cleaning.rules())
    report(str(cleaned.report))
    folds = make_folds(cleaned.transactions, config.protocol, weighting=config.data.weighting)
    for fold in folds.values():
        report(f"{fold.name} fold: {fold.train.n_customers} customers x {fold.train.n_items} items in train, "
               + ", ".join(f"{len(fold.ground_truth(s)[0])} evaluated in setting {s}" for s in config.settings))

    tags = {"job": "experiment", "config": config.name}
    if config_text is not None:
        tags["config_sha256"] = hashlib.sha256(config_text.encode()).hexdigest()
    with tracking.training_run(settings, config.name, tags=tags, experiment=config.experiment) as parent:
        tracking.log_params({"data": {"path": str(config.data.path), "format": config.data.format,
                                      "weighting": config.data.weighting, "rows": len(cleaned.transactions)},
                             "protocol": config.protocol.model_dump(), "settings": ",".join(config.settings),
                             "seed": config.seed,
                             "selection": {s: config.selection_metric(s) for s in config.settings}})
        tracking.log_metrics(cleaned.report.to_dict(), prefix="data.")

        candidates: list[Candidate] = []
        for entry in config.models:
            candidates += _tune(entry, folds["validation"], config, settings, report, len(candidates))

        choices = _refit_choices(candidates, folds["test"], config, settings, report)
        table = comparison_table(choices, config)
        winners = {setting: _winner(choices, setting, config) for setting in config.settings}
        lines = [result_line(choice, config.metrics) for choice in winners.values()]
        for setting, choice in winners.items():
            tracking.log_params({f"winner.{setting}": choice.candidate.label})
            tracking.log_metrics(choice.test, prefix=f"test.{setting}.")

        candidate_frame = candidates_frame(candidates, config)
        curves = curves_frame(choices)
        with tempfile.TemporaryDirectory() as tmp:
            folder = output_dir or Path(tmp)
            chosen = [winner_of(choice, config) for choice in winners.values()]
            written = write_artifacts(folder, table, candidate_frame, curves, config, lines, config_text, chosen)
            tracking.log_files(folder, written)
        return ExperimentResult(parent.info.run_id, table, candidate_frame, curves, winners, lines,
                                [str(path.relative_to(folder)) for path in written])


# -- tuning on validation ---------------------------------------------------------------------------------
def _tune(entry: ModelConfig, fold: Fold, config: ExperimentConfig, settings: TrainingSettings,
          report: Reporter, order: int) -> list[Candidate]:
    if entry.search is None:
        grid = entry.grid()
        return [_score_candidate(entry, params, f"{entry.name}#{i}", fold, config, settings, report, order + i)
                for i, params in enumerate(grid)]

    import optuna

    search = entry.search
    setting = search.setting or config.settings[0]
    metric = config.selection_metric(setting)
    seed = config.seed if search.seed is None else search.seed
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    found: list[Candidate] = []

    def objective(trial: optuna.Trial) -> float:
        params = {**entry.params, **{name: _suggest(trial, name, space) for name, space in search.space.items()}}
        candidate = _score_candidate(entry, params, f"{entry.name}/trial-{trial.number}", fold, config, settings,
                                     report, order + trial.number)
        found.append(candidate)
        return candidate.validation[setting][metric]

    study.optimize(objective, n_trials=search.n_trials)
    return found


def _suggest(trial: Any, name: str, space: Any) -> Any:
    if space.type == "categorical":
        return trial.suggest_categorical(name, space.choices)
    if space.type == "int":
        return trial.suggest_int(name, int(space.low), int(space.high), step=int(space.step or 1), log=space.log)
    return trial.suggest_float(name, space.low, space.high, step=space.step, log=space.log)


def _score_candidate(entry: ModelConfig, params: dict[str, Any], run_name: str, fold: Fold,
                     config: ExperimentConfig, settings: TrainingSettings, report: Reporter,
                     order: int) -> Candidate:
    with tracking.training_run(settings, run_name, experiment=config.experiment, nested=True,
                               tags={"role": "candidate", "model": entry.model, "label": entry.name}):
        tracking.log_params({"model": entry.model, **params})
        model, seconds = _fit(entry.model, params, fold)
        validation = {setting: score(model, fold, setting, config.ks) for setting in config.settings}
        for setting, metrics in validation.items():
            tracking.log_metrics(metrics, prefix=f"validation.{setting}.")
        tracking.log_metrics({"fit_seconds": seconds})
    summary = ", ".join(f"{s} {config.selection_metric(s)}={validation[s][config.selection_metric(s)]:.4f}"
                        for s in config.settings)
    report(f"  {run_name} {_format_params(params)}: {summary} (fit {seconds:.1f}s)")
    return Candidate(entry.name, entry.model, dict(params), run_name, validation, order)


# -- refit and test ---------------------------------------------------------------------------------------
def _refit_choices(candidates: list[Candidate], fold: Fold, config: ExperimentConfig,
                   settings: TrainingSettings, report: Reporter) -> list[Choice]:
    """Each model entry's best candidate per setting, refitted on ``fold.train`` and scored once per setting."""
    chosen: dict[str, dict[str, list[str]]] = {}  # label -> candidate name -> settings that chose it
    by_name = {candidate.name: candidate for candidate in candidates}
    for label in dict.fromkeys(candidate.label for candidate in candidates):
        own = [candidate for candidate in candidates if candidate.label == label]
        for setting in config.settings:
            best = _best(own, setting, config.selection_metric(setting))
            chosen.setdefault(label, {}).setdefault(best.name, []).append(setting)

    curve_ks = list(range(1, config.curve_max_k + 1))
    choices = []
    for label, picks in chosen.items():
        for name, picked_by in picks.items():
            candidate = by_name[name]
            with tracking.training_run(settings, f"{label}/test", experiment=config.experiment, nested=True,
                                       tags={"role": "test", "model": candidate.model, "label": label,
                                             "selected_from": name, "settings": ",".join(picked_by)}):
                tracking.log_params({"model": candidate.model, **candidate.params})
                model, seconds = _fit(candidate.model, candidate.params, fold)
                for setting in picked_by:
                    test, curve = score_with_curve(model, fold, setting, config.ks, curve_ks)
                    tracking.log_metrics(test, prefix=f"test.{setting}.")
                    choices.append(Choice(setting, candidate, test, curve))
                tracking.log_metrics({"fit_seconds": seconds})
            report(f"  {label}/test (from {name}, settings {','.join(picked_by)}): fit {seconds:.1f}s")
    order = {setting: i for i, setting in enumerate(config.settings)}
    return sorted(choices, key=lambda c: (order[c.setting], c.candidate.order))


def _best(candidates: list[Candidate], setting: str, metric: str) -> Candidate:
    """Highest ``metric`` on validation; ties go to the candidate listed (or tried) first (max keeps the first)."""
    return max(candidates, key=lambda c: _finite(c.validation[setting][metric]))


def _winner(choices: list[Choice], setting: str, config: ExperimentConfig) -> Choice:
    metric = config.selection_metric(setting)
    return _best_choice([c for c in choices if c.setting == setting], setting, metric)


def _best_choice(choices: list[Choice], setting: str, metric: str) -> Choice:
    return max(choices, key=lambda c: _finite(c.candidate.validation[setting][metric]))


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _fit(model_name: str, params: dict[str, Any], fold: Fold) -> tuple[Recommender, float]:
    start = time.perf_counter()
    model = create_model(model_name, **params).fit(fold.train)
    return model, time.perf_counter() - start


# -- scoring ----------------------------------------------------------------------------------------------
def score(model: Recommender, fold: Fold, setting: str, ks: list[int]) -> dict[str, float]:
    """Metrics at ``ks`` (and coverage at each k) of a model fitted on ``fold.train``."""
    return score_with_curve(model, fold, setting, ks, [])[0]


def score_with_curve(model: Recommender, fold: Fold, setting: str, ks: list[int],
                     curve_ks: list[int]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """:func:`score`, plus each metric at every k of ``curve_ks``, from a single call to ``recommend``."""
    customers, _ = fold.ground_truth(setting)
    depth = max([*ks, *curve_ks])
    lists, _ = model.recommend(customers, depth, exclude_seen=setting == "B")

    def cached(rows: np.ndarray, k: int, exclude_seen: bool) -> np.ndarray:
        return lists[:, :k]

    metrics = evaluate(cached, fold, setting, ks)
    metrics.update({f"coverage@{k}": _coverage(lists, k, fold.train.n_items) for k in ks})
    curve: dict[str, list[float]] = {}
    if curve_ks:
        at = evaluate(cached, fold, setting, curve_ks)
        for name in ("ndcg", "recall", "precision", "map"):
            curve[name] = [at[f"{name}@{k}"] for k in curve_ks]
        curve["coverage"] = [_coverage(lists, k, fold.train.n_items) for k in curve_ks]
    return metrics, curve


def _coverage(lists: np.ndarray, k: int, n_items: int) -> float:
    # The protocol's definition (distinct listed items over the training catalogue) at every k.
    top = lists[:, :k]
    return len(np.unique(top[top >= 0])) / n_items


# -- tables, lines, artifacts -----------------------------------------------------------------------------
def comparison_table(choices: list[Choice], config: ExperimentConfig) -> pd.DataFrame:
    """One row per setting and model entry: selected parameters, validation selection score, test metrics."""
    rows = []
    for choice in choices:
        metric = config.selection_metric(choice.setting)
        rows.append({"setting": choice.setting, "model": choice.candidate.label,
                     "params": _format_params(choice.candidate.params),
                     "selected_by": f"validation {metric}",
                     "validation": choice.candidate.validation[choice.setting][metric],
                     **{name: choice.test[name] for name in config.metrics},
                     "test_customers": int(choice.test["n_customers"])})
    table = pd.DataFrame(rows)
    order = {setting: i for i, setting in enumerate(config.settings)}
    table["_setting"] = table["setting"].map(order)
    table = table.sort_values(["_setting", "validation"], ascending=[True, False], kind="stable")
    return table.drop(columns="_setting").reset_index(drop=True)


def candidates_frame(candidates: list[Candidate], config: ExperimentConfig) -> pd.DataFrame:
    rows = []
    for candidate in candidates:
        for setting in config.settings:
            # the selection metric too, when it is not among the metrics: the file must show why a
            # candidate was chosen
            names = dict.fromkeys([*config.metrics, config.selection_metric(setting)])
            rows.append({"setting": setting, "model": candidate.label, "candidate": candidate.name,
                         "params": _format_params(candidate.params),
                         **{name: candidate.validation[setting][name] for name in names}})
    return pd.DataFrame(rows)


def curves_frame(choices: list[Choice]) -> pd.DataFrame:
    rows = [{"setting": choice.setting, "model": choice.candidate.label, "metric": metric, "k": k, "value": value}
            for choice in choices for metric, values in choice.curve.items()
            for k, value in enumerate(values, start=1)]
    return pd.DataFrame(rows, columns=["setting", "model", "metric", "k", "value"])


def result_line(choice: Choice, metrics: list[str]) -> str:
    values = " ".join(f"{name}={choice.test[name]:.4f}" for name in metrics)
    return f"RESULT setting={choice.setting} model={choice.candidate.label} {values}"


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(table[c]) else "---" for c in table.columns) + "|"
    lines = [header, rule]
    for row in table.itertuples(index=False):
        cells = [f"{value:.{digits}f}" if isinstance(value, float) else str(value) for value in row]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def winner_of(choice: Choice, config: ExperimentConfig) -> ExperimentWinner:
    """A setting's winner as ``recsys train --from-experiment`` reads it: the exact parameters, not the
    table's rounded ones."""
    metric = config.selection_metric(choice.setting)
    return ExperimentWinner(setting=choice.setting, label=choice.candidate.label, model=choice.candidate.model,
                            params=choice.candidate.params, weighting=config.data.weighting,
                            selected_by=f"validation {metric}",
                            validation_score=choice.candidate.validation[choice.setting][metric])


def write_artifacts(folder: Path, table: pd.DataFrame, candidates: pd.DataFrame, curves: pd.DataFrame,
                    config: ExperimentConfig, lines: list[str], config_text: str | None,
                    winners: list[ExperimentWinner]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "comparison.csv", folder / "comparison.md", folder / "validation.csv",
               folder / "curves.csv", folder / "results.txt", folder / WINNERS_ARTIFACT]
    table.to_csv(written[0], index=False, float_format="%.6f")
    written[1].write_text(to_markdown(table))
    candidates.to_csv(written[2], index=False, float_format="%.6f")
    curves.to_csv(written[3], index=False, float_format="%.6f")
    written[4].write_text("\n".join(lines) + "\n")
    written[5].write_text(json.dumps(winners_document(winners), indent=2, sort_keys=True) + "\n")
    if config_text is not None:
        written.append(folder / "config.yaml")
        written[-1].write_text(config_text)
    for setting in config.settings:
        written.append(plots.plot_curves(curves, setting, folder / "plots" / f"curves_{setting}.png"))
    coverage = next((m for m in config.metrics if parse_metric(m)[0] == "coverage"), None)
    if coverage is not None:
        written.append(plots.plot_coverage(table, coverage, folder / "plots" / "coverage.png"))
    return written


def _format_params(params: dict[str, Any]) -> str:
    return json.dumps({key: _plain(value) for key, value in params.items()}, sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
