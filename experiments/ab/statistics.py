"""Frequentist A/B statistics from per-arm sums: the data source aggregates, this module does the maths.

Each arm of a metric is summarised by ``n``, the sum and the sum of squares of the per-unit values
(a conversion is a 0/1 value, so a proportion is the same summary); with a pre-experiment covariate,
also its sum, sum of squares and the sum of products with the metric. From those alone:

- the absolute effect (treatment mean minus control mean) with Welch's t-test: unequal variances, the
  Welch-Satterthwaite degrees of freedom, a two-sided p-value and a ``1 - alpha`` confidence interval;
- the relative effect (absolute over the control mean) with its interval from the delta method, which
  also counts the uncertainty of the control mean in the denominator;
- CUPED (Deng, Xu, Kohavi and Walker 2013): each unit's value less ``theta`` times its centred
  pre-experiment covariate, which removes the share of variance the covariate explains and leaves the
  expected effect unchanged. ``theta`` is the slope of the metric on the covariate within arms (pooled
  over both), as a regression with an arm indicator has it: pooling the arms' values instead would let
  the treatment effect leak into ``theta`` whenever the arms' covariate means differ by chance;
- the sample ratio mismatch test: a chi-square goodness of fit of the units per arm against the designed
  split. A mismatch means assignment or logging is broken and no effect estimate can be trusted;
- Holm's step-down adjustment of p-values when several treatments are compared with one control.
- ratio metrics such as revenue per order, where the unit (a customer) is not what the metric counts:
  the ratio of the arm's sums, with its variance from the delta method (the numerator's and
  denominator's variances and their covariance), compared as the means are;
- the units per arm needed to detect a given effect (normal approximation, two-sided), for a
  conversion rate or a mean, with the level split over the treatments (Bonferroni) when there are several.

Degenerate input (an arm with fewer than two units, no variance, a zero control mean for the relative
effect) gives an explicit "no information" result naming why, never a NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: p-value below which the split of units is called a sample ratio mismatch: strict, since the test runs
#: on every analysis and a false alarm stops a sound experiment.
SRM_P_THRESHOLD = 0.001


@dataclass(frozen=True)
class ArmSummary:
    """Sufficient statistics of one metric in one arm; the ``covariate_*`` sums are for CUPED.

    The sums may be of values less ``shift`` (and covariates less ``covariate_shift``): variances and
    covariances do not change, and with a shift near the mean the sum of squares keeps its precision
    where raw values are large and close together (1e9 +- 1 leaves nothing of the variance in a double).
    Give both arms of a comparison the same shifts."""

    n: int
    sum: float
    sum_squares: float
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    sum_products: float | None = None
    shift: float = 0.0
    covariate_shift: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise ValueError(f"n must be a count (an integer >= 0), got {self.n!r}")
        sums = {"sum": self.sum, "sum_squares": self.sum_squares, "covariate_sum": self.covariate_sum,
                "covariate_sum_squares": self.covariate_sum_squares, "sum_products": self.sum_products,
                "shift": self.shift, "covariate_shift": self.covariate_shift}
        for name, value in sums.items():
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, float(value))
        object.__setattr__(self, "n", int(self.n))

    @property
    def mean(self) -> float:
        if not self.n:
            return self.shift
        # an all-zero arm's mean comes back as 1e-17, not 0, once shifted: a relative effect would explode
        return _cancelled(self.shift + self.sum / self.n, self.shift, self.sum / self.n)

    @property
    def variance(self) -> float:
        """Sample variance (``n - 1`` in the denominator); 0 below two units."""
        return _variance(self.n, self.sum, self.sum_squares)

    @property
    def has_covariate(self) -> bool:
        return None not in (self.covariate_sum, self.covariate_sum_squares, self.sum_products)

    @property
    def covariate_mean(self) -> float:
        return self.covariate_shift + (self.covariate_sum or 0.0) / self.n if self.n else self.covariate_shift

    @property
    def covariate_variance(self) -> float:
        return _variance(self.n, self.covariate_sum or 0.0, self.covariate_sum_squares or 0.0)

    @property
    def covariance(self) -> float:
        """Sample covariance of the metric and the covariate."""
        if self.n < 2:
            return 0.0
        return ((self.sum_products or 0.0) - self.sum * (self.covariate_sum or 0.0) / self.n) / (self.n - 1)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric. ``p_value`` and the intervals are None when the data
    hold no information, and the means and effects too when an arm has no units (``note`` says why)."""

    control_mean: float | None
    treatment_mean: float | None
    absolute: float | None
    absolute_ci: tuple[float, float] | None
    relative: float | None
    relative_ci: tuple[float, float] | None
    p_value: float | None
    degrees_of_freedom: float | None
    cuped_theta: float | None = None
    note: str = ""


@dataclass(frozen=True)
class SampleRatioCheck:
    observed: dict[str, int]
    expected: dict[str, float]
    chi_square: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_P_THRESHOLD


def compare(control: ArmSummary, treatment: ArmSummary, *, alpha: float = 0.05, cuped: bool = False) -> Comparison:
    """Welch's test of ``treatment.mean - control.mean``; with ``cuped`` the means and variances are
    adjusted by the pre-experiment covariate both summaries carry."""
    check_alpha(alpha)
    if cuped and not (control.has_covariate and treatment.has_covariate):
        raise ValueError("cuped needs the covariate sums (covariate_sum, covariate_sum_squares, sum_products) "
                         "in both arms")
    if (control.shift, control.covariate_shift) != (treatment.shift, treatment.covariate_shift):
        raise ValueError("both arms must carry the same shifts")
    empty = [name for name, arm in (("control", control), ("treatment", treatment)) if arm.n == 0]
    if empty:
        return Comparison(control.mean if control.n else None, treatment.mean if treatment.n else None, None, None,
                          None, None, None, None, None, f"no units in {' and '.join(empty)}")
    theta = _pooled_theta(control, treatment) if cuped else None
    control_mean, treatment_mean = control.mean, treatment.mean
    # from the shifted sums, which keep the digits that the means lose next to a large shift
    absolute = _mean_gap(treatment.sum, treatment.n, control.sum, control.n)
    if theta is not None:
        absolute -= theta * _mean_gap(treatment.covariate_sum, treatment.n, control.covariate_sum, control.n)
    relative = absolute / control_mean if control_mean else None
    no_information = _no_information(control, treatment)
    if no_information:
        return Comparison(control_mean, treatment_mean, absolute, None, relative, None, None, None, theta,
                          no_information)
    var_c, var_t = (_adjusted_variance(arm, theta) for arm in (control, treatment))
    return _welch(control_mean, treatment_mean, absolute, relative, var_c / control.n, var_t / treatment.n,
                  control.n, treatment.n, alpha, theta)


def _welch(control_mean: float, treatment_mean: float, absolute: float, relative: float | None, se_c2: float,
           se_t2: float, n_control: int, n_treatment: int, alpha: float, theta: float | None) -> Comparison:
    """The test and intervals from the two arms' squared standard errors."""
    se = math.sqrt(se_c2 + se_t2)
    if se == 0:
        return Comparison(control_mean, treatment_mean, absolute, None, relative, None, None, None, theta,
                          "no variance in either arm")
    df = (se_c2 + se_t2) ** 2 / (se_c2 ** 2 / (n_control - 1) + se_t2 ** 2 / (n_treatment - 1))
    t = absolute / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    quantile = float(stats.t.ppf(1 - alpha / 2, df))
    absolute_ci = (absolute - quantile * se, absolute + quantile * se)
    relative_ci, note = None, ""
    if relative is None:
        note = "control mean is 0: no relative effect"
    else:
        # delta method for (mu_c + d) / mu_c - 1 with independent arms
        adjusted_treatment = control_mean + absolute
        se_relative = math.sqrt(se_t2 / control_mean ** 2 + adjusted_treatment ** 2 * se_c2 / control_mean ** 4)
        relative_ci = (relative - quantile * se_relative, relative + quantile * se_relative)
    return Comparison(control_mean, treatment_mean, absolute, absolute_ci, relative, relative_ci, p_value, df,
                      theta, note)


@dataclass(frozen=True)
class RatioSummary:
    """Sums of one ratio metric's numerator and denominator over an arm's units, and of their products.

    The two summaries may be shifted (see :class:`ArmSummary`); ``sum_products`` is then the sum of the
    shifted values' products, so that values far from zero keep the variance's digits."""

    n: int
    numerator: ArmSummary
    denominator: ArmSummary
    sum_products: float

    @property
    def ratio(self) -> float | None:
        # the ratio of the sums is the ratio of the means
        return self.numerator.mean / self.denominator.mean if self.n and self.denominator.mean else None

    @property
    def variance(self) -> float:
        """Per-unit variance of the ratio by the delta method: ``n`` times that of the arm's ratio."""
        m, d = self.numerator.mean, self.denominator.mean
        covariance = (self.sum_products - self.numerator.sum * self.denominator.sum / self.n) / (self.n - 1)
        terms = (self.numerator.variance / d ** 2, -2 * covariance * m / d ** 3,
                 m ** 2 * self.denominator.variance / d ** 4)
        return max(_cancelled(sum(terms), *terms), 0.0)


def compare_ratio(control: RatioSummary, treatment: RatioSummary, *, alpha: float = 0.05) -> Comparison:
    """Welch's test of the difference of two arms' ratios of sums, with delta-method variances."""
    check_alpha(alpha)
    empty = [name for name, arm in (("control", control), ("treatment", treatment))
             if arm.n and not arm.denominator.mean]
    if empty or control.n < 2 or treatment.n < 2:
        note = (f"the denominator sums to 0 in {' and '.join(empty)}" if empty else
                f"fewer than two units in {'control' if control.n < 2 else 'treatment'}")
        return Comparison(control.ratio, treatment.ratio, None, None, None, None, None, None, None, note)
    control_ratio, treatment_ratio = control.ratio, treatment.ratio
    absolute = treatment_ratio - control_ratio
    relative = absolute / control_ratio if control_ratio else None
    se_c2, se_t2 = control.variance / control.n, treatment.variance / treatment.n
    return _welch(control_ratio, treatment_ratio, absolute, relative, se_c2, se_t2, control.n, treatment.n, alpha,
                  None)


def sample_ratio_check(counts: Mapping[str, int], weights: Mapping[str, float]) -> SampleRatioCheck:
    """Chi-square goodness of fit of the units per arm against the designed ``weights`` (any scale)."""
    if set(counts) != set(weights):
        raise ValueError(f"counts name arms {sorted(counts)} but weights name {sorted(weights)}")
    if len(counts) < 2:
        raise ValueError("a sample ratio check needs at least two arms")
    if any(w <= 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError(f"weights must be positive and finite, got {dict(weights)}")
    total_units, total_weight = sum(counts.values()), sum(weights.values())
    if total_units == 0:
        raise ValueError("no units in any arm")
    arms = sorted(counts)
    expected = {arm: total_units * weights[arm] / total_weight for arm in arms}
    chi_square = sum((counts[arm] - expected[arm]) ** 2 / expected[arm] for arm in arms)
    p_value = float(stats.chi2.sf(chi_square, len(arms) - 1))
    return SampleRatioCheck({arm: int(counts[arm]) for arm in arms}, expected, float(chi_square), p_value)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (family-wise error control), in the input order; None stays None."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    m = len(present)
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def units_per_arm_for_rate(baseline: float, effect: float, *, alpha: float = 0.05, power: float = 0.8,
                           treatments: int = 1) -> int:
    """Units per arm to detect a change of ``effect`` (absolute) in a conversion rate of ``baseline``:
    the pooled-variance two-proportion formula (Fleiss), as most A/B calculators use."""
    _check_design(alpha, power, treatments)
    treated = baseline + effect
    if not 0 < baseline < 1 or not 0 < treated < 1 or effect == 0:
        raise ValueError(f"baseline and baseline + effect must be rates strictly between 0 and 1 and differ, "
                         f"got baseline={baseline}, effect={effect}")
    z_alpha, z_power = _z(alpha / treatments), float(stats.norm.ppf(power))
    pooled = (baseline + treated) / 2
    spread = (z_alpha * math.sqrt(2 * pooled * (1 - pooled))
              + z_power * math.sqrt(baseline * (1 - baseline) + treated * (1 - treated)))
    return math.ceil(spread ** 2 / effect ** 2)


def units_per_arm_for_mean(sd: float, effect: float, *, alpha: float = 0.05, power: float = 0.8,
                           treatments: int = 1) -> int:
    """Units per arm to detect a change of ``effect`` in a mean whose per-unit standard deviation is ``sd``
    (the same in both arms): ``2 (z_alpha + z_power)^2 sd^2 / effect^2``. With CUPED, give the standard
    deviation left after adjustment, ``sd * sqrt(1 - rho^2)``."""
    _check_design(alpha, power, treatments)
    if not sd > 0 or not math.isfinite(sd) or effect == 0 or not math.isfinite(effect):
        raise ValueError(f"sd must be positive and effect non-zero, got sd={sd}, effect={effect}")
    z = _z(alpha / treatments) + float(stats.norm.ppf(power))
    return math.ceil(2 * z ** 2 * sd ** 2 / effect ** 2)


def _check_design(alpha: float, power: float, treatments: int) -> None:
    check_alpha(alpha)
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1, got {power}")
    if treatments < 1:
        raise ValueError(f"treatments must be >= 1, got {treatments}")


def _z(two_sided_alpha: float) -> float:
    return float(stats.norm.ppf(1 - two_sided_alpha / 2))


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")


def _variance(n: int, total: float, squares: float) -> float:
    if n < 2:
        return 0.0
    # constant values leave rounding (1e-33, or a tiny negative) rather than 0, which would pass for a
    # variance and give a p-value of 1e-17 instead of "no variance"
    return max(_cancelled(squares - total * total / n, squares, total * total / n) / (n - 1), 0.0)


#: Relative size below which a difference of floating-point terms is taken for their exact cancellation.
_ROUNDING = 1e-12


def _cancelled(value: float, *terms: float) -> float:
    """``value``, the sum or difference of ``terms``, or 0 when it is within rounding of their size."""
    scale = max((abs(term) for term in terms), default=0.0)
    return 0.0 if abs(value) <= _ROUNDING * scale else value


def _mean_gap(treatment_sum: float | None, treatment_n: int, control_sum: float | None, control_n: int) -> float:
    return (treatment_sum or 0.0) / treatment_n - (control_sum or 0.0) / control_n


def _pooled_theta(control: ArmSummary, treatment: ArmSummary) -> float:
    arms = [arm for arm in (control, treatment) if arm.n >= 2]
    variance = sum((arm.n - 1) * arm.covariate_variance for arm in arms)
    covariance = sum((arm.n - 1) * arm.covariance for arm in arms)
    return covariance / variance if variance > 0 else 0.0


def _adjusted_variance(arm: ArmSummary, theta: float | None) -> float:
    if theta is None:
        return arm.variance
    terms = (arm.variance, theta ** 2 * arm.covariate_variance, -2 * theta * arm.covariance)
    return max(_cancelled(sum(terms), *terms), 0.0)


def _no_information(control: ArmSummary, treatment: ArmSummary) -> str:
    small = [name for name, arm in (("control", control), ("treatment", treatment)) if arm.n < 2]
    return f"fewer than two units in {' and '.join(small)}" if small else ""
