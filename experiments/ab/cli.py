"""``recsys ab``: export an experiment's exposures, turn them and the shop's transactions into one row of
outcomes per unit, and analyse those rows.

Only typer and rich load with the ``recsys`` command; the statistics load when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from training.cli import known_format

ab_app = typer.Typer(help="Online A/B tests: sample sizes, exposures, per-unit outcomes and their statistics.",
                     no_args_is_help=True)
console = Console()


@ab_app.command("analyze")
def analyze_command(
    data: Annotated[Path, typer.Argument(help="One row per unit: its arm and metric values (CSV or Parquet)")],
    metric: Annotated[list[str] | None, typer.Option(
        help="A metric column (repeat for several); 0/1 for conversions")] = None,
    ratio: Annotated[list[str] | None, typer.Option(
        help="NAME=NUMERATOR/DENOMINATOR: a ratio of sums, e.g. aov=revenue/orders (repeatable)")] = None,
    arm_column: Annotated[str, typer.Option(help="Column naming each unit's arm")] = "arm",
    control: Annotated[str, typer.Option(help="The control arm")] = "control",
    weights: Annotated[str | None, typer.Option(
        help="Designed split, e.g. control=1,treatment=1: checks the sample ratio")] = None,
    covariate: Annotated[list[str] | None, typer.Option(
        help="METRIC=COLUMN: a pre-experiment value of the metric for CUPED (repeatable)")] = None,
    unit_column: Annotated[str | None, typer.Option(help="Column of unit ids, checked to hold each unit once")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level; intervals are at 1 - alpha")] = 0.05,
    output: Annotated[Path | None, typer.Option(help="Also write the report as JSON here")] = None,
    mlflow_experiment: Annotated[str | None, typer.Option(
        "--mlflow-experiment", help="Log the report as a run of this MLflow experiment")] = "recsys-ab",
    track: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Log the report to MLflow")] = True,
) -> None:
    """Compare every arm with the control: effects with confidence intervals, Welch p-values (Holm-adjusted
    over arms), CUPED where a covariate is given, and a sample ratio mismatch check against --weights.
    The report is logged as an MLflow run (parameters, one metric per figure, report.json)."""
    from experiments.ab.report import analyze, require_columns
    from experiments.outputs import prepare_output_file
    from recsys.data.loaders import read_column_names, read_columns

    if output is not None:
        prepare_output_file(output)
    metric = metric or []
    covariates = _pairs(covariate or [], "--covariate", str)
    ratios = _pairs(ratio or [], "--ratio", _ratio_columns, "NAME=NUMERATOR/DENOMINATOR")
    design = _pairs(weights.split(","), "--weights", float) if weights else None
    columns = list(dict.fromkeys([arm_column, *metric, *covariates.values(), *(c for p in ratios.values() for c in p),
                                  *([unit_column] if unit_column else [])]))
    require_columns(read_column_names(data), columns, str(data))
    frame = read_columns(data, columns, text_columns=[arm_column, *([unit_column] if unit_column else [])])
    report = analyze(frame, arm_column=arm_column, metrics=metric, control=control, covariates=covariates,
                     weights=design, unit_column=unit_column, alpha=alpha, source=str(data), ratios=ratios)
    _print_report(report)
    if output is not None:
        output.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        console.print(f"report written to {escape(str(output))}", highlight=False)
    if track:
        params = {"data": str(data), "arm_column": arm_column, "control": control, "metrics": ",".join(metric),
                  "ratios": {name: "/".join(pair) for name, pair in ratios.items()},
                  "covariates": covariates, "weights": design, "unit_column": unit_column, "alpha": alpha}
        run_id = _log_to_mlflow(report, params, mlflow_experiment or "recsys-ab", f"ab-{data.stem}")
        console.print(f"MLflow run [bold]{run_id}[/bold] (experiment {mlflow_experiment})", soft_wrap=True)


@ab_app.command("size")
def size_command(
    effect: Annotated[float, typer.Option(help="Smallest change worth detecting, in the metric's units "
                                               "(a rate change of 0.01 is one percentage point)")],
    baseline_rate: Annotated[float | None, typer.Option(help="Control's conversion rate, for a rate metric")] = None,
    sd: Annotated[float | None, typer.Option(help="Per-unit standard deviation, for a mean (revenue, orders)")] = None,
    relative: Annotated[bool, typer.Option(help="EFFECT is relative to the baseline rate (0.05 = +5%)")] = False,
    alpha: Annotated[float, typer.Option(help="Significance level (two-sided)")] = 0.05,
    power: Annotated[float, typer.Option(help="Chance of detecting the effect when it is there")] = 0.8,
    treatments: Annotated[int, typer.Option(help="Arms besides the control (the level is split over them)")] = 1,
    daily_units: Annotated[float | None, typer.Option(help="Units entering the experiment per day")] = None,
) -> None:
    """Units per arm needed to detect EFFECT: give --baseline-rate for a conversion rate or --sd for a mean."""
    from experiments.ab.report import ABDataError
    from experiments.ab.statistics import units_per_arm_for_mean, units_per_arm_for_rate

    if (baseline_rate is None) == (sd is None):
        raise ABDataError("give exactly one of --baseline-rate (a conversion rate) and --sd (a mean)")
    if relative and baseline_rate is None:
        raise ABDataError("--relative applies to --baseline-rate only")
    absolute = effect * baseline_rate if relative else effect
    try:
        n = (units_per_arm_for_rate(baseline_rate, absolute, alpha=alpha, power=power, treatments=treatments)
             if baseline_rate is not None else
             units_per_arm_for_mean(sd, absolute, alpha=alpha, power=power, treatments=treatments))
    except ValueError as exc:
        raise ABDataError(str(exc)) from None
    arms = treatments + 1
    console.print(f"{n} units per arm, {n * arms} in all over {arms} arms (alpha {alpha:g} two-sided"
                  f"{f', split over {treatments} treatments' if treatments > 1 else ''}, power {power:g})",
                  highlight=False, soft_wrap=True)
    if daily_units is not None:
        if not daily_units > 0:
            raise ABDataError(f"--daily-units must be positive, got {daily_units}")
        import math

        days = math.ceil(n * arms / daily_units)
        console.print(f"about {days} days at {daily_units:g} units a day; run {math.ceil(days / 7) * 7} days "
                      "(whole weeks) so that every weekday counts alike", highlight=False, soft_wrap=True)


@ab_app.command("exposures")
def exposures_command(
    experiment_id: Annotated[str, typer.Argument(help="Experiment id, as in the service's designs file")],
    output: Annotated[Path, typer.Option(help="CSV to write: unit_id, arm, exposed_at")],
    limits_url: Annotated[str | None, typer.Option(
        help="The service's limits store (redis://... or sqlite:///...); default: the service's, from "
             "RECSYS_SERVING_LIMITS_URL or RECSYS_SERVING_STORE_URL as the service resolves them")] = None,
    prefix: Annotated[str | None, typer.Option(
        help="Key prefix of the limits store; default the service's (RECSYS_SERVING_LIMITS_PREFIX, else "
             "RECSYS_SERVING_STORE_PREFIX, else recsys)")] = None,
    salt: Annotated[str | None, typer.Option(
        help="The run of the experiment (its salt; default its id): needed once it was restarted")] = None,
) -> None:
    """Write each unit's first exposure to EXPERIMENT, as the service logged it."""
    from experiments.ab.assignment import EXPOSURE_FIELDS, EXPOSURES_STREAM
    from experiments.ab.report import ABDataError
    from experiments.outputs import prepare_output_file
    from training.event_logs import read_event_log, service_limits_store

    prepare_output_file(output)
    url, prefix = service_limits_store(limits_url, prefix)
    log = read_event_log(url, prefix, EXPOSURES_STREAM)
    if log.empty:
        log = log.reindex(columns=["event_id", *EXPOSURE_FIELDS])
    ours = log[log["experiment_id"] == experiment_id]
    if ours.empty:
        present = log["experiment_id"].value_counts().to_dict()
        raise ABDataError(f"no exposures to experiment {experiment_id!r} in the log of {url} (prefix {prefix!r}); "
                          f"exposures there by experiment: {present}")
    runs = ours["salt"].value_counts().to_dict()
    if salt is None and len(runs) > 1:
        raise ABDataError(f"experiment {experiment_id!r} ran under several salts (exposures per salt: {runs}); "
                          "choose one with --salt")
    if salt is not None:
        if salt not in runs:
            raise ABDataError(f"experiment {experiment_id!r} has no exposures under salt {salt!r}; salts: {runs}")
        ours = ours[ours["salt"] == salt]
    # the service logs a unit once while its marker lives; a later repeat keeps the first exposure
    first = ours.drop_duplicates("unit_id", keep="first")
    table = first.rename(columns={"at": "exposed_at"})[["unit_id", "arm", "exposed_at"]]
    table.to_csv(output, index=False)
    arms = table["arm"].value_counts().sort_index().to_dict()
    since = f", the oldest at {log['at'].iloc[0]}" if len(log) else ""
    console.print(escape(f"{len(table)} units exposed to {experiment_id!r} ({arms}) written to {output}; "
                         f"{len(ours) - len(first)} repeated exposures dropped; the log holds {len(log)} exposures of "
                         f"all experiments{since} (older ones are trimmed beyond RECSYS_SERVING_EXPOSURE_LOG_MAX)"),
                  highlight=False, soft_wrap=True)


@ab_app.command("outcomes")
def outcomes_command(
    exposures: Annotated[Path, typer.Argument(help="Exposures CSV from 'recsys ab exposures'")],
    transactions: Annotated[Path, typer.Option(help="The shop's transactions (CSV or Parquet)")],
    output: Annotated[Path, typer.Option(help="CSV to write: one row per unit for 'recsys ab analyze'")],
    data_format: Annotated[str, typer.Option("--format", help="canonical or online-retail",
                                             callback=known_format)] = "canonical",
    days: Annotated[int, typer.Option(help="Days after each unit's first exposure that count")] = 14,
    pre_days: Annotated[int, typer.Option(help="Days before it, for the CUPED covariates")] = 28,
) -> None:
    """Orders, revenue and conversion of every exposed customer after exposure (zeros for non-buyers),
    and the same before it; customers whose windows fall outside the data are left out and counted; those
    who never bought anything are kept with zeros and counted (none of them a customer is an error: the two
    files then write ids differently)."""
    from experiments.ab.outcomes import EXPOSURE_COLUMNS, unit_outcomes
    from experiments.ab.report import ABDataError, require_columns
    from experiments.outputs import prepare_output_file
    from recsys.data import clean_transactions
    from recsys.data.loaders import read_column_names, read_columns
    from training.sources import DataSource, load_source

    prepare_output_file(output)
    require_columns(read_column_names(exposures), EXPOSURE_COLUMNS, str(exposures))
    # text as written: unit_outcomes reads a column of floats (40117.0) as the loaders read customer ids
    exposed = read_columns(exposures, EXPOSURE_COLUMNS, text_columns=EXPOSURE_COLUMNS)
    cleaned = clean_transactions(load_source(DataSource(str(transactions), data_format)))
    console.print(escape(f"cleaning: {cleaned.report}"), highlight=False, soft_wrap=True)
    if cleaned.transactions.empty:
        raise ABDataError(f"{transactions}: no transactions left after cleaning ({cleaned.report})")
    result = unit_outcomes(exposed, cleaned.transactions, days=days, pre_days=pre_days, source=str(exposures))
    result.frame.to_csv(output, index=False)
    console.print(escape(f"{len(result.frame)} units written to {output}; left out: {result.ends_after_data} whose "
                         f"{days}-day window runs past the last transaction ({result.data_end}), "
                         f"{result.starts_before_data} whose {pre_days} days before exposure start before the first "
                         f"({result.data_start}); {result.never_bought} of the {len(exposed)} exposed units bought "
                         "nothing in the transactions at all"), highlight=False, soft_wrap=True)


def _log_to_mlflow(report, params: dict, experiment: str, run_name: str) -> str:
    import re
    import tempfile

    from training import tracking
    from training.settings import get_settings

    def name(text: str) -> str:  # MLflow names allow letters, digits and _ - . / space
        return re.sub(r"[^\w\-./ ]", "_", text)

    metrics = {}
    for row in report.to_frame().to_dict("records"):
        prefix = f"{name(row['metric'])}.{name(row['treatment'])}."
        for key in ("n_control", "n_treatment", "missing_control", "missing_treatment", "control_mean",
                    "treatment_mean", "absolute", "absolute_low", "absolute_high", "relative", "relative_low",
                    "relative_high", "p_value", "p_adjusted", "cuped_theta"):
            metrics[prefix + key] = row[key]
    srm = report.sample_ratio
    if srm is not None:
        metrics |= {"sample_ratio.chi_square": srm.chi_square, "sample_ratio.p_value": srm.p_value}
    with tracking.training_run(get_settings(), run_name, tags={"recsys.kind": "ab-analysis"},
                               experiment=experiment) as run:
        tracking.log_params(params)
        tracking.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "report.json"
            path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
            tracking.log_files(Path(folder), [path])
        return run.info.run_id


def _ratio_columns(value: str) -> tuple[str, str]:
    numerator, sep, denominator = value.partition("/")
    if not sep or not numerator.strip() or not denominator.strip():
        raise ValueError(value)
    return numerator.strip(), denominator.strip()


def _pairs(items: list[str], option: str, convert, form: str = "NAME=VALUE") -> dict:
    from experiments.ab.report import ABDataError

    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            pairs[key.strip()] = convert(value.strip())
        except ValueError:
            raise ABDataError(f"{option}: expected {form}, got {item!r}") from None
    return pairs


def _print_report(report) -> None:
    """One block per (metric, arm): plain lines that stay readable in a log of any width."""
    srm = report.sample_ratio
    if srm is None:
        console.print("sample ratio: not checked (give --weights)", highlight=False)
    else:
        expected = {arm: round(n, 1) for arm, n in srm.expected.items()}
        verdict = ("[red]MISMATCH: assignment or logging is broken; do not trust the effects below[/red]"
                   if srm.mismatch else "ok")
        console.print(f"sample ratio: units {srm.observed}, expected {expected}, chi-square {srm.chi_square:.3f}, "
                      f"p {srm.p_value:.4g}: {verdict}", highlight=False, soft_wrap=True)
    level = f"{(1 - report.alpha) * 100:g}% CI"
    for r in report.results:
        c = r.comparison
        cuped = "" if c.cuped_theta is None else f" (CUPED, theta {c.cuped_theta:.4g})"
        lines = [f"\n{r.metric}{cuped}: {r.treatment} vs {report.control}",
                 f"  units     {r.treatment_summary.n} vs {r.control_summary.n}"
                 + (f" (left out, no value: {r.missing})" if any(r.missing.values()) else ""),
                 f"  means     {_number(c.treatment_mean)} vs {_number(c.control_mean)}",
                 f"  absolute  {_number(c.absolute, '+')}  {level} {_interval(c.absolute_ci)}"]
        if c.relative is not None:
            lines.append(f"  relative  {c.relative * 100:+.3g}%  {level} {_interval(c.relative_ci, 100, '%')}")
        if c.p_value is None:
            lines.append(f"  p         n/a: {c.note}")
        else:
            significant = r.adjusted_p_value is not None and r.adjusted_p_value < report.alpha
            lines.append(f"  p         {c.p_value:.4g} (Holm {r.adjusted_p_value:.4g})"
                         + ("  [bold]significant[/bold]" if significant else "  not significant"))
            if c.note:
                lines.append(f"  note      {escape(c.note)}")
        for line in lines:
            console.print(line, highlight=False, soft_wrap=True)


def _number(value: float | None, sign: str = "") -> str:
    return "n/a" if value is None else f"{value:{sign}.6g}"


def _interval(ci: tuple[float, float] | None, scale: float = 1.0, unit: str = "") -> str:
    return "n/a" if ci is None else f"[{ci[0] * scale:+.4g}{unit}, {ci[1] * scale:+.4g}{unit}]"
