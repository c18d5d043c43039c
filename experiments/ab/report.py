"""An A/B test's report from one row per unit: arm, metric values and optional pre-experiment covariates.

The frame is reduced to per-arm sums (:class:`~experiments.ab.statistics.ArmSummary`), which is all the
statistics need; every treatment is compared with the control on every metric, p-values are
Holm-adjusted over the treatments of a metric, and the units per arm are checked against the designed
split. A unit whose value of a metric is missing is left out of that metric only and counted in
``missing``; anything else malformed is an :class:`ABDataError` naming the column and rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments.ab.statistics import (
    ArmSummary,
    Comparison,
    RatioSummary,
    SampleRatioCheck,
    compare,
    compare_ratio,
    holm,
    sample_ratio_check,
)
from recsys.data.loaders import as_id_strings

_SHOWN_ROWS = 5


class ABDataError(ValueError):
    """The unit-level data cannot be analysed as given; the message names the source, column and rows."""


@dataclass(frozen=True)
class MetricResult:
    metric: str
    treatment: str
    control_summary: ArmSummary
    treatment_summary: ArmSummary
    comparison: Comparison
    adjusted_p_value: float | None
    missing: dict[str, int]  # units per arm (control, treatment) without a value of this metric


@dataclass(frozen=True)
class ABReport:
    control: str
    alpha: float
    units: dict[str, int]
    sample_ratio: SampleRatioCheck | None
    results: list[MetricResult] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per (metric, treatment): units with a value and without, means, effects, intervals and
        p-values."""
        rows = []
        for r in self.results:
            c = r.comparison
            rows.append({
                "metric": r.metric, "treatment": r.treatment, "n_control": r.control_summary.n,
                "n_treatment": r.treatment_summary.n, "missing_control": r.missing[self.control],
                "missing_treatment": r.missing[r.treatment], "control_mean": c.control_mean,
                "treatment_mean": c.treatment_mean, "absolute": c.absolute,
                "absolute_low": c.absolute_ci[0] if c.absolute_ci else None,
                "absolute_high": c.absolute_ci[1] if c.absolute_ci else None,
                "relative": c.relative, "relative_low": c.relative_ci[0] if c.relative_ci else None,
                "relative_high": c.relative_ci[1] if c.relative_ci else None,
                "p_value": c.p_value, "p_adjusted": r.adjusted_p_value,
                "significant": r.adjusted_p_value is not None and r.adjusted_p_value < self.alpha,
                "cuped_theta": c.cuped_theta, "note": c.note,
            })
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        srm = self.sample_ratio
        return {
            "control": self.control, "alpha": self.alpha, "units": self.units,
            "sample_ratio": None if srm is None else {
                "observed": srm.observed, "expected": srm.expected, "chi_square": srm.chi_square,
                "p_value": srm.p_value, "mismatch": srm.mismatch},
            "results": [{k: _plain(v) for k, v in row.items()} for row in self.to_frame().to_dict("records")],
        }


def analyze(
    frame: pd.DataFrame,
    *,
    arm_column: str,
    metrics: Sequence[str],
    control: str,
    covariates: Mapping[str, str] | None = None,
    weights: Mapping[str, float] | None = None,
    unit_column: str | None = None,
    alpha: float = 0.05,
    source: str = "data",
    ratios: Mapping[str, tuple[str, str]] | None = None,
) -> ABReport:
    """Compare every arm with ``control`` on each of ``metrics`` (one row per unit in ``frame``).

    ``covariates`` maps a metric to its pre-experiment column (CUPED). ``weights`` is the designed split
    (arm -> weight); with it, arms of the design missing from the data count as zero units and the sample
    ratio is checked. ``unit_column``, when given, must hold each unit once. ``ratios`` maps a name to
    (numerator column, denominator column), e.g. revenue per order, compared as ratios of the arms' sums.
    """
    if not 0 < alpha < 1:
        raise ABDataError(f"alpha must be between 0 and 1, got {alpha}")
    bad_weights = {arm: w for arm, w in (weights or {}).items()
                   if isinstance(w, bool) or not isinstance(w, int | float) or not (np.isfinite(w) and w > 0)}
    if bad_weights:
        raise ABDataError(f"weights must be positive and finite, got {bad_weights}")
    covariates, ratios = dict(covariates or {}), dict(ratios or {})
    if not metrics and not ratios:
        raise ABDataError(f"{source}: name at least one metric column or ratio")
    clashing = sorted(set(ratios) & set(metrics))
    if clashing:
        raise ABDataError(f"{source}: ratio name(s) {clashing} are also metric columns; name them apart")
    unknown = sorted(set(covariates) - set(metrics))
    if unknown:
        raise ABDataError(f"{source}: covariates given for {unknown}, which are not among the metrics {list(metrics)}")
    require_columns(list(frame.columns),
                    [arm_column, *metrics, *covariates.values(), *(c for pair in ratios.values() for c in pair),
                     *([unit_column] if unit_column else [])], source)
    arms = _arms(frame, arm_column, source)
    if unit_column:
        _check_units_once(frame[unit_column], source, unit_column)
    if weights is not None:
        outside = sorted(set(arms.unique()) - set(weights))
        if outside:
            raise ABDataError(f"{source}: column {arm_column!r} holds arm(s) {outside} that are not in the design "
                              f"{sorted(weights)}")
        names = list(weights)
    else:
        names = sorted(arms.unique())
    if not len(frame):
        raise ABDataError(f"{source}: no units: the data has no rows")
    if control not in names:
        raise ABDataError(f"{source}: control arm {control!r} is not among the arms {names}")
    if len(names) < 2:
        raise ABDataError(f"{source}: only the arm(s) {names}: a comparison needs the control and another arm "
                          "(weights name arms that have no units yet)")
    units = {name: int((arms == name).sum()) for name in names}
    srm = sample_ratio_check(units, weights) if weights is not None else None
    values = {metric: _numbers(frame[metric], source, metric, allow_missing=True) for metric in metrics}
    pre = {metric: _numbers(frame[column], source, column, allow_missing=False)
           for metric, column in covariates.items()}
    results = []
    treatments = [name for name in names if name != control]
    for metric in metrics:
        summaries = {name: _summary(values[metric], pre.get(metric), arms == name,
                                    (source, metric, covariates.get(metric))) for name in names}
        comparisons = [compare(summaries[control][0], summaries[name][0], alpha=alpha, cuped=metric in pre)
                       for name in treatments]
        adjusted = holm([c.p_value for c in comparisons])
        for name, comparison, p_adjusted in zip(treatments, comparisons, adjusted, strict=True):
            results.append(MetricResult(metric, name, summaries[control][0], summaries[name][0], comparison,
                                        p_adjusted, {control: summaries[control][1], name: summaries[name][1]}))
    for name, (numerator, denominator) in ratios.items():
        parts = [_numbers(frame[column], source, column, allow_missing=True) for column in (numerator, denominator)]
        summaries = {arm: _ratio_summary(*parts, arms == arm) for arm in names}
        comparisons = [compare_ratio(summaries[control][0], summaries[arm][0], alpha=alpha) for arm in treatments]
        adjusted = holm([c.p_value for c in comparisons])
        for arm, comparison, p_adjusted in zip(treatments, comparisons, adjusted, strict=True):
            results.append(MetricResult(name, arm, summaries[control][0].numerator, summaries[arm][0].numerator,
                                        comparison, p_adjusted, {control: summaries[control][1],
                                                                 arm: summaries[arm][1]}))
    return ABReport(control, alpha, units, srm, results)


def require_columns(present: Sequence[str], needed: Sequence[str], source: str) -> None:
    missing = [c for c in dict.fromkeys(needed) if c not in present]
    if missing:
        raise ABDataError(f"{source}: missing column(s) {missing}; present: {list(present)}")


def _arms(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    arms = frame[column]
    missing = arms.isna().to_numpy()
    if missing.any():
        raise ABDataError(f"{source}: column {column!r} is empty on rows {data_rows(missing)} "
                          f"({int(missing.sum())} in all); every unit needs its arm")
    return arms.astype(str).str.strip()


def _check_units_once(units: pd.Series, source: str, column: str) -> None:
    units = as_id_strings(units)
    missing = units.isna().to_numpy()
    if missing.any():
        raise ABDataError(f"{source}: column {column!r} is empty on rows {data_rows(missing)} "
                          f"({int(missing.sum())} in all); every unit needs its id")
    repeated = units[units.duplicated(keep=False)]
    if len(repeated):
        shown = list(dict.fromkeys(repeated.astype(str)))[:_SHOWN_ROWS]
        raise ABDataError(f"{source}: column {column!r} repeats unit(s) {shown} ({repeated.nunique()} in all); "
                          "give one row per unit with its totals")


def _numbers(values: pd.Series, source: str, column: str, *, allow_missing: bool) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy(dtype="float64")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    absent = values.isna().to_numpy()
    bad = ~np.isfinite(numbers) & ~(absent if allow_missing else np.zeros(len(values), bool))
    if bad.any():
        examples = [values.iloc[i] for i in np.flatnonzero(bad)[:_SHOWN_ROWS]]
        problem = "non-numeric or infinite values" if allow_missing else "missing, non-numeric or infinite values"
        hint = "" if allow_missing else " (give 0 to units with no pre-experiment data)"
        raise ABDataError(f"{source}: column {column!r} has {problem} on rows {data_rows(bad)} "
                          f"({int(bad.sum())} in all), e.g. {examples}{hint}")
    return numbers


def _summary(values: np.ndarray, covariate: np.ndarray | None, in_arm: pd.Series,
             names: tuple[str, str, str | None]) -> tuple[ArmSummary, int]:
    """The arm's sums over units with a value (less the metric's mean over every arm, which keeps the
    variance's digits for large values), and how many units had none."""
    mask = in_arm.to_numpy()
    present = mask & ~np.isnan(values)
    known = ~np.isnan(values)
    shift = float(values[known].mean()) if known.any() else 0.0
    y = values[present] - shift
    covariate_shift = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name
        sums = [float(y.sum()), float(y @ y)]
        if covariate is not None:
            covariate_shift = float(covariate[known].mean()) if known.any() else 0.0
            x = covariate[present] - covariate_shift
            sums += [float(x.sum()), float(x @ x), float(x @ y)]
    if not np.isfinite(sums).all():
        source, metric, column = names
        raise ABDataError(f"{source}: column {metric!r}{f' or {column!r}' if column else ''} holds values too "
                          "large to square in double precision; rescale it (e.g. to thousands)")
    return (ArmSummary(len(y), *sums, shift=shift, covariate_shift=covariate_shift),
            int(mask.sum() - present.sum()))


def _ratio_summary(numerator: np.ndarray, denominator: np.ndarray, in_arm: pd.Series) -> tuple[RatioSummary, int]:
    """A ratio's sums over the arm's units with both values (each less its mean over every arm, as for
    a metric), and how many units lacked one."""
    mask = in_arm.to_numpy()
    known = ~np.isnan(numerator) & ~np.isnan(denominator)
    present = mask & known
    shifts = [float(values[known].mean()) if known.any() else 0.0 for values in (numerator, denominator)]
    m, d = numerator[present] - shifts[0], denominator[present] - shifts[1]
    n = int(present.sum())
    return (RatioSummary(n, ArmSummary(n, float(m.sum()), float(m @ m), shift=shifts[0]),
                         ArmSummary(n, float(d.sum()), float(d @ d), shift=shifts[1]), float(m @ d)),
            int(mask.sum() - n))


def data_rows(mask: np.ndarray) -> str:
    """The first few rows flagged in ``mask``, numbered as the transaction loaders number them."""
    return f"{[int(i) for i in np.flatnonzero(mask)[:_SHOWN_ROWS]]} (0-based data rows)"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
