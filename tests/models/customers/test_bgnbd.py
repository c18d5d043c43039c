"""BG/NBD: the published CDNOW fit, hand-checkable limits, a simulation, and degenerate-fit detection."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.cdnow import load_cdnow_summary
from recsys.models.customers.bgnbd import (
    BetaGeoModel,
    DegenerateFitError,
    _log_likelihood_terms,
    _Objective,
)

CDNOW_PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def _fitted(params=CDNOW_PARAMS) -> BetaGeoModel:
    model = BetaGeoModel()
    model.params_ = dict(params)
    return model


def _simulate(rng, n, r, alpha, a, b, T):
    """(frequency, recency) of n customers observed for T after their first purchase."""
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = rng.beta(a, b, n) if a > 0 else np.zeros(n)
    now = np.zeros(n)
    frequency = np.zeros(n)
    recency = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        now[active] += rng.exponential(1.0 / rate[active])
        active &= now <= T
        frequency[active] += 1
        recency[active] = now[active]
        active &= rng.random(n) >= dropout
    return frequency, recency, np.full(n, float(T))


@pytest.mark.data
def test_reproduces_fader_hardie_lee_cdnow_fit(cdnow_dir):
    summary = load_cdnow_summary(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")
    model = BetaGeoModel().fit(summary.frequency, summary.recency, summary["T"])
    assert {name: round(value, 3) for name, value in model.params_.items()} == CDNOW_PARAMS
    assert round(model.log_likelihood_, 1) == -9582.4
    np.testing.assert_allclose(
        model.individual_log_likelihood(summary.frequency, summary.recency, summary["T"]).sum(),
        model.log_likelihood_,
    )
    diagnostics = model.fit_diagnostics_
    assert diagnostics.converged and not diagnostics.degenerate, diagnostics.reasons
    assert model.check() is model


@pytest.mark.data
def test_online_retail_dropout_collapse_is_flagged(online_retail_path):
    from recsys.data.cleaning import clean_transactions
    from recsys.data.online_retail import load_online_retail
    from recsys.models.customers.rfm_summary import summarize_purchases

    transactions = clean_transactions(load_online_retail(online_retail_path)).transactions
    cutoff = transactions["timestamp"].max().normalize() + np.timedelta64(1, "D")
    summary = summarize_purchases(transactions, cutoff, time_unit="D")
    model = BetaGeoModel().fit(summary.frequency, summary.recency, summary["T"])
    alive = model.conditional_probability_alive(summary.frequency, summary.recency, summary["T"])
    assert np.median(alive) > 0.999
    diagnostics = model.fit_diagnostics_
    assert diagnostics.degenerate
    assert any("cannot tell active from lapsed" in reason for reason in diagnostics.reasons)
    assert any("dropout is not identified" in reason for reason in diagnostics.reasons)
    with pytest.raises(DegenerateFitError, match="BG/NBD fit is degenerate"):
        model.check()


def test_analytic_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    frequency, recency, T = _simulate(rng, 400, 0.5, 3.0, 0.8, 2.5, 20.0)
    objective = _Objective(frequency, recency, T, penalizer=0.1)
    for log_params in (np.log([0.3, 5.0, 0.7, 2.0]), np.log([2.0, 0.5, 3.0, 0.2])):
        _, gradient = objective(log_params)
        step = 1e-6
        numeric = [
            (objective(log_params + step * unit)[0] - objective(log_params - step * unit)[0]) / (2 * step)
            for unit in np.eye(4)
        ]
        np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)


def test_fit_recovers_simulated_parameters_and_is_not_degenerate():
    truth = {"r": 0.5, "alpha": 3.0, "a": 0.8, "b": 2.5}
    frequency, recency, T = _simulate(np.random.default_rng(1), 20_000, *truth.values(), T=52.0)
    model = BetaGeoModel().fit(frequency, recency, T)
    for name, value in truth.items():
        assert model.params_[name] == pytest.approx(value, rel=0.15), name
    assert not model.fit_diagnostics_.degenerate, model.fit_diagnostics_.reasons


def test_customers_who_never_leave_are_flagged():
    frequency, recency, T = _simulate(np.random.default_rng(2), 5_000, 0.8, 5.0, 0.0, 1.0, T=52.0)
    model = BetaGeoModel().fit(frequency, recency, T)
    assert model.fit_diagnostics_.degenerate
    with pytest.raises(DegenerateFitError):
        model.check()


def test_probability_alive_hand_cases():
    model = _fitted()
    r, alpha, a, b = CDNOW_PARAMS.values()
    # Without repeat purchases there was never a chance to drop out.
    assert model.conditional_probability_alive([0, 0], [0, 0], [1.0, 50.0]).tolist() == [1.0, 1.0]
    # Bought at the end of observation: only the dropout right after that purchase counts.
    x, t = 3.0, 30.0
    expected = 1.0 / (1.0 + a / (b + x - 1))
    assert model.conditional_probability_alive(x, t, t) == pytest.approx(expected, rel=1e-12)
    # Longer silence, lower probability.
    silence = model.conditional_probability_alive(x, [30.0, 20.0, 10.0, 1.0], 30.0)
    assert np.all(np.diff(silence) < 0)
    # Far-out values stay finite instead of overflowing.
    extreme = model.conditional_probability_alive(500, 0.01, 1e6)
    assert 0.0 <= extreme < 1e-12


def test_expected_purchases_limits_and_monotonicity():
    model = _fitted()
    t = np.array([0.0, 1.0, 10.0, 52.0])
    unconditional = model.expected_number_of_purchases_up_to_time(t)
    assert unconditional[0] == pytest.approx(0.0, abs=1e-15)
    assert np.all(np.diff(unconditional) > 0)
    # A customer just acquired (x = 0, T = 0) is an average new customer.
    np.testing.assert_allclose(
        model.conditional_expected_number_of_purchases_up_to_time(t, 0, 0, 0), unconditional, rtol=1e-12
    )
    # Among customers who just bought, more purchases predict more purchases. (Not so for a long
    # silence: a frequent buyer who stopped is likely gone, so expectations fall with frequency.)
    by_frequency = model.conditional_expected_number_of_purchases_up_to_time(39, np.arange(1, 30), 38, 38)
    assert np.all(np.diff(by_frequency) > 0)
    silent = model.conditional_expected_number_of_purchases_up_to_time(39, np.arange(1, 30), 10, 38)
    assert silent[-1] < silent[0]
    # Small rate: E ~ E[lambda | data] * t * P(alive) as t -> 0.
    x, t_x, T = 4.0, 20.0, 30.0
    slope = (CDNOW_PARAMS["r"] + x) / (CDNOW_PARAMS["alpha"] + T) * model.conditional_probability_alive(x, t_x, T)
    assert model.conditional_expected_number_of_purchases_up_to_time(1e-6, x, t_x, T) / 1e-6 == pytest.approx(
        slope, rel=1e-5
    )


def test_expected_purchases_match_simulation():
    params = {"r": 0.5, "alpha": 3.0, "a": 0.8, "b": 2.5}
    model = _fitted(params)
    frequency, _, _ = _simulate(np.random.default_rng(3), 200_000, *params.values(), T=26.0)
    standard_error = frequency.std() / np.sqrt(frequency.size)
    assert abs(frequency.mean() - model.expected_number_of_purchases_up_to_time(26.0)) < 4 * standard_error
    silent = np.mean(frequency == 0)
    assert model.probability_of_no_purchase_within(26.0, 0, 0, 0) == pytest.approx(silent, abs=0.005)


def test_probability_of_no_purchase_within():
    model = _fitted()
    x, t_x, T = 5.0, 15.0, 38.0
    alive = model.conditional_probability_alive(x, t_x, T)
    silent = model.probability_of_no_purchase_within(np.array([0.0, 1.0, 10.0, 1e9]), x, t_x, T)
    assert silent[0] == pytest.approx(1.0)
    assert np.all(np.diff(silent) < 0)
    assert silent[-1] == pytest.approx(1.0 - alive, rel=1e-6)


def test_penalizer_shrinks_parameters_and_validation():
    frequency, recency, T = _simulate(np.random.default_rng(4), 2_000, 0.5, 3.0, 0.8, 2.5, T=52.0)
    plain = BetaGeoModel().fit(frequency, recency, T)
    penalized = BetaGeoModel(penalizer=0.05).fit(frequency, recency, T)
    assert sum(v**2 for v in penalized.params_.values()) < sum(v**2 for v in plain.params_.values())
    assert penalized.log_likelihood_ < plain.log_likelihood_
    with pytest.raises(ValueError, match="penalizer"):
        BetaGeoModel(penalizer=-1)
    with pytest.raises(ValueError, match="recency must lie"):
        plain.conditional_probability_alive(1, 5.0, 4.0)
    with pytest.raises(ValueError, match="recency must be 0"):
        BetaGeoModel().fit([0, 1], [1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="whole number"):
        BetaGeoModel().fit([0.5], [0.0], [2.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        BetaGeoModel().conditional_probability_alive(1, 1, 2)


def test_log_likelihood_of_a_single_customer_by_hand():
    from scipy.special import beta, gamma

    r, alpha, a, b = 0.5, 2.0, 1.5, 3.0
    x, t_x, T = 2.0, 4.0, 10.0
    common = gamma(r + x) * alpha**r / gamma(r)
    by_hand = (
        beta(a, b + x) / beta(a, b) * common / (alpha + T) ** (r + x)
        + beta(a + 1, b + x - 1) / beta(a, b) * common / (alpha + t_x) ** (r + x)
    )
    ll, _ = _log_likelihood_terms(np.log([r, alpha, a, b]), np.array([x]), np.array([t_x]), np.array([T]), False)
    assert ll[0] == pytest.approx(np.log(by_hand), rel=1e-12)
