"""Gamma-Gamma spend: the published CDNOW fit, hand formulas, lifetimes' CLV sum, degenerate fits."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.cdnow import load_cdnow_summary
from recsys.models.customers.bgnbd import BetaGeoModel, DegenerateFitError, FitDiagnostics
from recsys.models.customers.gamma_gamma import GammaGammaModel, _log_likelihood_terms

SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
PURCHASES = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
HEALTHY = FitDiagnostics(True, "", 0, 0, 0.0, (), {})


def _model(cls, params):
    model = cls()
    model.params_ = dict(params)
    model.fit_diagnostics_ = HEALTHY
    return model


def _simulate(rng, n, p, q, gamma):
    frequency = rng.integers(1, 10, n).astype(float)
    scale = rng.gamma(q, 1.0 / gamma, n)
    spend = rng.gamma(p * frequency, 1.0 / (scale * frequency))  # mean of x Gamma(p, scale) draws
    return frequency, spend


@pytest.mark.data
def test_reproduces_fader_hardie_lee_cdnow_spend_fit(cdnow_dir):
    summary = load_cdnow_summary(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")
    model = GammaGammaModel().fit(summary.frequency, summary.monetary_value)
    # To 2 decimals in numpy's sense (|error| < 0.015): the maximum on the summary's cent-rounded
    # spend is gamma = 15.448, which lifetimes also reports (15.45); the paper prints 15.44.
    for name, value in SPEND.items():
        assert model.params_[name] == pytest.approx(value, abs=0.015), name
    assert not model.fit_diagnostics_.degenerate, model.fit_diagnostics_.reasons
    assert model.fit_diagnostics_.checks["population_mean_spend"] == pytest.approx(35.17, abs=0.01)


def test_analytic_gradient_matches_finite_differences():
    frequency, spend = _simulate(np.random.default_rng(0), 300, 4.0, 3.0, 20.0)

    def total(log_params):
        return _log_likelihood_terms(log_params, frequency, spend, with_gradient=False)[0].sum()

    for log_params in (np.log([6.0, 3.7, 15.0]), np.log([0.5, 10.0, 2.0])):
        _, gradient = _log_likelihood_terms(log_params, frequency, spend, with_gradient=True)
        step = 1e-6
        numeric = [(total(log_params + step * u) - total(log_params - step * u)) / (2 * step) for u in np.eye(3)]
        np.testing.assert_allclose(gradient.sum(axis=1), numeric, rtol=1e-6)


def test_fit_recovers_simulated_parameters_and_ignores_one_time_buyers():
    frequency, spend = _simulate(np.random.default_rng(1), 20_000, 4.0, 3.0, 20.0)
    with_one_timers = np.concatenate([frequency, np.zeros(500)]), np.concatenate([spend, np.zeros(500)])
    model = GammaGammaModel().fit(*with_one_timers)
    assert model.params_ == pytest.approx({"p": 4.0, "q": 3.0, "gamma": 20.0}, rel=0.1)
    assert not model.fit_diagnostics_.degenerate


def test_infinite_mean_spend_is_degenerate():
    frequency, spend = _simulate(np.random.default_rng(2), 20_000, 4.0, 0.6, 20.0)
    model = GammaGammaModel().fit(frequency, spend)
    assert model.params_["q"] <= 1.0
    assert any("population mean spend is infinite" in reason for reason in model.fit_diagnostics_.reasons)
    with pytest.raises(DegenerateFitError, match="Gamma-Gamma"):
        model.check()
    with pytest.raises(DegenerateFitError):
        model.conditional_expected_average_profit(0, 0)


def test_conditional_expected_average_profit_by_hand():
    model = _model(GammaGammaModel, SPEND)
    p, q, gamma = SPEND.values()
    population = p * gamma / (q - 1)
    assert model.conditional_expected_average_profit(0, 0) == pytest.approx(population)
    # A weighted average of the population mean and the customer's own mean.
    x, m = 3.0, 50.0
    weight = p * x / (p * x + q - 1)
    assert model.conditional_expected_average_profit(x, m) == pytest.approx((1 - weight) * population + weight * m)
    assert model.conditional_expected_average_profit(1e9, m) == pytest.approx(m, rel=1e-6)


def test_clv_matches_lifetimes_discounted_monthly_sum():
    spend_model = _model(GammaGammaModel, SPEND)
    purchase_model = _model(BetaGeoModel, PURCHASES)
    frequency = np.array([0.0, 1.0, 5.0, 12.0])
    recency = np.array([0.0, 10.0, 30.0, 38.0])
    T = np.array([38.0, 38.0, 38.0, 38.0])
    monetary = np.array([0.0, 20.0, 35.0, 80.0])
    clv = spend_model.customer_lifetime_value(
        purchase_model, frequency, recency, T, monetary, time_months=6, discount_rate=0.02, freq="W"
    )
    expected_spend = spend_model.conditional_expected_average_profit(frequency, monetary)
    by_loop = np.zeros(4)
    for month in range(1, 7):
        end, start = month * 4.345, (month - 1) * 4.345
        purchases = purchase_model.conditional_expected_number_of_purchases_up_to_time(
            end, frequency, recency, T
        ) - purchase_model.conditional_expected_number_of_purchases_up_to_time(start, frequency, recency, T)
        by_loop += expected_spend * purchases / 1.02**month
    np.testing.assert_allclose(clv, by_loop, rtol=1e-12)
    undiscounted = spend_model.customer_lifetime_value(
        purchase_model, frequency, recency, T, monetary, time_months=6, discount_rate=0.0, freq="W"
    )
    expected = expected_spend * purchase_model.conditional_expected_number_of_purchases_up_to_time(
        6 * 4.345, frequency, recency, T
    )
    np.testing.assert_allclose(undiscounted, expected, rtol=1e-12)
    assert np.all(clv < undiscounted)


def test_clv_refuses_degenerate_models_and_bad_arguments():
    spend_model = _model(GammaGammaModel, SPEND)
    purchase_model = _model(BetaGeoModel, PURCHASES)
    purchase_model.fit_diagnostics_ = FitDiagnostics(True, "", 0, 0, 0.0, ("dropout collapsed",), {})
    with pytest.raises(DegenerateFitError, match="dropout collapsed"):
        spend_model.customer_lifetime_value(purchase_model, [1], [1], [2], [10])
    purchase_model.fit_diagnostics_ = HEALTHY
    with pytest.raises(ValueError, match="freq"):
        spend_model.customer_lifetime_value(purchase_model, [1], [1], [2], [10], freq="Y")
    with pytest.raises(ValueError, match="time_months"):
        spend_model.customer_lifetime_value(purchase_model, [1], [1], [2], [10], time_months=0)
    with pytest.raises(ValueError, match="monetary_value > 0"):
        GammaGammaModel().fit([1, 2, 3], [10.0, 0.0, 5.0])
    with pytest.raises(ValueError, match="at least 3"):
        GammaGammaModel().fit([0, 1, 2], [0.0, 1.0, 5.0])


@pytest.mark.data
def test_cdnow_clv_is_positive_and_grows_with_spend(cdnow_dir):
    summary = load_cdnow_summary(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")
    purchases = BetaGeoModel().fit(summary.frequency, summary.recency, summary["T"])
    spend = GammaGammaModel().fit(summary.frequency, summary.monetary_value)
    clv = spend.customer_lifetime_value(
        purchases, summary.frequency, summary.recency, summary["T"], summary.monetary_value, freq="W"
    )
    assert np.all(clv > 0) and np.isfinite(clv).all()
    richer = spend.customer_lifetime_value(
        purchases, summary.frequency, summary.recency, summary["T"], summary.monetary_value * 2, freq="W"
    )
    repeat = summary.frequency.to_numpy() > 0
    assert np.all(richer[repeat] > clv[repeat])
