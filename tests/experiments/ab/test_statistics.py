from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from experiments.ab.statistics import (
    ArmSummary,
    RatioSummary,
    compare,
    compare_ratio,
    holm,
    sample_ratio_check,
    units_per_arm_for_mean,
    units_per_arm_for_rate,
)


def summary(values, covariate=None) -> ArmSummary:
    y = np.asarray(values, dtype=float)
    if covariate is None:
        return ArmSummary(len(y), y.sum(), y @ y)
    x = np.asarray(covariate, dtype=float)
    return ArmSummary(len(y), y.sum(), y @ y, x.sum(), x @ x, x @ y)


def test_welch_by_hand():
    # control 1..5: mean 3, variance 2.5; treatment 2,4,..,10: mean 6, variance 10
    # se = sqrt(2.5/5 + 10/5) = sqrt(2.5); t = 3 / sqrt(2.5) = 1.8974; df = 2.5^2 / (0.5^2/4 + 2^2/4) = 5.8824
    result = compare(summary([1, 2, 3, 4, 5]), summary([2, 4, 6, 8, 10]))
    assert result.absolute == 3.0
    assert result.degrees_of_freedom == pytest.approx(5.8824, abs=1e-4)
    quantile = stats.t.ppf(0.975, 6.25 / 1.0625)
    assert result.absolute_ci == pytest.approx((3 - quantile * math.sqrt(2.5), 3 + quantile * math.sqrt(2.5)))
    assert result.p_value == pytest.approx(2 * stats.t.sf(3 / math.sqrt(2.5), 6.25 / 1.0625))
    assert result.relative == pytest.approx(1.0)  # 6 / 3 - 1


def test_welch_agrees_with_scipy_on_random_arms():
    rng = np.random.default_rng(0)
    control, treatment = rng.normal(10, 3, 500), rng.normal(10.5, 4, 400)
    result = compare(summary(control), summary(treatment))
    reference = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.degrees_of_freedom == pytest.approx(reference.df, rel=1e-9)


def test_conversions_match_the_two_proportion_test_and_the_delta_method_by_hand():
    # 100 of 1,000 against 130 of 1,000. Unpooled z-test: se = sqrt(.1*.9/1000 + .13*.87/1000) = 0.014251,
    # z = 2.1051, p = 0.0353; the t-test on 0/1 values (n - 1 variances) is a hair wider.
    control = ArmSummary(1000, 100, 100)
    treatment = ArmSummary(1000, 130, 130)
    result = compare(control, treatment)
    assert result.absolute == pytest.approx(0.03)
    assert result.p_value == pytest.approx(0.0353, abs=0.0005)
    # relative 0.3; se^2 = se_t^2 / 0.1^2 + 0.13^2 se_c^2 / 0.1^4 with se^2 = variance (n - 1) / n
    se_t2, se_c2 = (130 - 130 ** 2 / 1000) / 999 / 1000, (100 - 100 ** 2 / 1000) / 999 / 1000
    se_relative = math.sqrt(se_t2 / 0.01 + 0.13 ** 2 * se_c2 / 0.1 ** 4)
    assert se_relative == pytest.approx(0.16293, abs=1e-5)
    low, high = result.relative_ci
    assert result.relative == pytest.approx(0.3)
    assert (high - low) / 2 == pytest.approx(se_relative * stats.t.ppf(0.975, result.degrees_of_freedom))


def test_cuped_removes_a_chance_imbalance_in_the_covariate():
    # y = 2x + noise, treatment adds 1; the treatment arm happened to get larger x (mean 4 against 3)
    control_x = np.array([1, 2, 3, 4, 5.0])
    treatment_x = control_x + 1
    noise = np.array([0.1, -0.1, 0.1, -0.1, 0.0])
    control = summary(2 * control_x + noise, control_x)
    treatment = summary(2 * treatment_x + 1 - noise, treatment_x)
    plain = compare(control, treatment)
    adjusted = compare(control, treatment, cuped=True)
    assert plain.absolute == pytest.approx(3.0)  # the imbalance (2 x 1) plus the effect
    assert adjusted.cuped_theta == pytest.approx(2.0, abs=0.05)
    assert adjusted.absolute == pytest.approx(1.0, abs=0.05)
    assert adjusted.absolute_ci[0] < 1.0 < adjusted.absolute_ci[1]
    assert adjusted.absolute_ci[1] - adjusted.absolute_ci[0] < (plain.absolute_ci[1] - plain.absolute_ci[0]) / 10


def test_cuped_narrows_the_interval_by_the_share_of_variance_the_covariate_explains():
    rng = np.random.default_rng(3)
    n, rho = 20_000, 0.8
    x = rng.normal(0, 1, 2 * n)
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.normal(0, 1, 2 * n)
    control, treatment = summary(y[:n], x[:n]), summary(y[n:] + 0.05, x[n:])
    plain, adjusted = compare(control, treatment), compare(control, treatment, cuped=True)
    ratio = (adjusted.absolute_ci[1] - adjusted.absolute_ci[0]) / (plain.absolute_ci[1] - plain.absolute_ci[0])
    assert ratio == pytest.approx(math.sqrt(1 - rho ** 2), abs=0.02)


def test_cuped_needs_the_covariate_sums():
    with pytest.raises(ValueError, match="cuped needs the covariate sums"):
        compare(summary([1, 2, 3]), summary([2, 3, 4]), cuped=True)


def test_degenerate_arms_give_no_information_instead_of_nan():
    single = compare(summary([1.0]), summary([1, 2, 3]))
    assert (single.p_value, single.absolute_ci) == (None, None)
    assert single.note == "fewer than two units in control"
    constant = compare(summary([2, 2, 2]), summary([2, 2]))
    assert constant.p_value is None and constant.note == "no variance in either arm"
    zero_control = compare(summary([0, 0, 0]), summary([0, 1, 2]))
    assert zero_control.relative is None and zero_control.p_value is not None
    assert zero_control.note == "control mean is 0: no relative effect"


def test_summary_rejects_what_is_not_a_count_or_a_finite_sum():
    with pytest.raises(ValueError, match="n must be a count"):
        ArmSummary(-1, 0.0, 0.0)
    with pytest.raises(ValueError, match="sum_squares must be finite"):
        ArmSummary(3, 1.0, float("nan"))


def test_sample_ratio_by_hand():
    # 5,000 against 5,200 on a 50/50 design: chi-square = 2 * 100^2 / 5,100 = 3.9216, p = 0.0477
    check = sample_ratio_check({"control": 5000, "treatment": 5200}, {"control": 1, "treatment": 1})
    assert check.chi_square == pytest.approx(3.92157, abs=1e-5)
    assert check.p_value == pytest.approx(0.04767, abs=1e-5)
    assert not check.mismatch
    skewed = sample_ratio_check({"control": 5000, "treatment": 5500}, {"control": 1, "treatment": 1})
    assert skewed.mismatch and skewed.chi_square == pytest.approx(2 * 250 ** 2 / 5250)
    unequal = sample_ratio_check({"a": 2000, "b": 1000, "c": 1000}, {"a": 0.5, "b": 0.25, "c": 0.25})
    assert unequal.chi_square == 0.0 and unequal.p_value == 1.0


def test_sample_ratio_refuses_arms_the_design_does_not_name():
    with pytest.raises(ValueError, match="counts name arms"):
        sample_ratio_check({"control": 10, "other": 10}, {"control": 1, "treatment": 1})


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04); back in input order
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert holm([]) == []


def test_sample_sizes_match_the_published_answers():
    # Evan Miller's calculator: baseline 10%, one point absolute, alpha 0.05 two-sided, power 0.8
    assert units_per_arm_for_rate(0.10, 0.01) == 14_751
    # Cohen's power table: d = 0.2 needs 393 per group at alpha 0.05 two-sided, power 0.8 (normal approximation)
    assert units_per_arm_for_mean(1.0, 0.2) == 393
    assert units_per_arm_for_mean(10.0, 2.0) == 393  # only sd / effect matters
    # two treatments split alpha: as one comparison at 0.025
    assert units_per_arm_for_rate(0.10, 0.01, treatments=2) == units_per_arm_for_rate(0.10, 0.01, alpha=0.025)
    # a fall to 9% is easier to see than a rise to 11%: p(1 - p) is smaller there
    assert units_per_arm_for_rate(0.10, -0.01) < units_per_arm_for_rate(0.10, 0.01)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: units_per_arm_for_rate(0.95, 0.1), "strictly between 0 and 1"),
    (lambda: units_per_arm_for_rate(0.1, 0.0), "strictly between 0 and 1 and differ"),
    (lambda: units_per_arm_for_mean(0.0, 1.0), "sd must be positive"),
    (lambda: units_per_arm_for_mean(1.0, 1.0, power=1.0), "power must be between 0 and 1"),
    (lambda: units_per_arm_for_mean(1.0, 1.0, treatments=0), "treatments must be >= 1"),
])
def test_sample_size_input_is_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def ratio_summary(numerator, denominator) -> RatioSummary:
    m, d = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    return RatioSummary(len(m), ArmSummary(len(m), m.sum(), m @ m), ArmSummary(len(d), d.sum(), d @ d), m @ d)


def test_ratio_variance_is_the_delta_method_by_hand():
    # revenue per order over four customers: 60 / 7; variance = g' S g with g = (1/mean_d, -mean_m/mean_d^2)
    revenue, orders = [10.0, 20.0, 30.0, 0.0], [1.0, 2.0, 3.0, 1.0]
    arm = ratio_summary(revenue, orders)
    assert arm.ratio == pytest.approx(60 / 7)
    covariance = np.cov(np.vstack([revenue, orders]))  # n - 1 in the denominator, as the summary uses
    mean_m, mean_d = np.mean(revenue), np.mean(orders)
    gradient = np.array([1 / mean_d, -mean_m / mean_d ** 2])
    assert arm.variance == pytest.approx(gradient @ covariance @ gradient)


def test_ratio_intervals_cover_the_true_difference():
    rng = np.random.default_rng(11)
    covered, runs = 0, 1_000
    for _ in range(runs):
        orders_c, orders_t = rng.poisson(2.0, 300) + 1, rng.poisson(2.0, 300) + 1
        revenue_c = orders_c * rng.gamma(4.0, 5.0, 300)  # 20 per order on average
        revenue_t = orders_t * rng.gamma(4.0, 5.5, 300)  # 22 per order
        result = compare_ratio(ratio_summary(revenue_c, orders_c), ratio_summary(revenue_t, orders_t))
        covered += result.absolute_ci[0] <= 2.0 <= result.absolute_ci[1]
    assert 0.93 <= covered / runs <= 0.97


def test_a_ratio_without_information_says_why():
    zero = compare_ratio(ratio_summary([0, 0], [0, 0]), ratio_summary([1, 2], [1, 1]))
    assert zero.p_value is None and zero.note == "the denominator sums to 0 in control"
    single = compare_ratio(ratio_summary([1], [1]), ratio_summary([1, 2], [1, 1]))
    assert single.note == "fewer than two units in control" and single.absolute is None
