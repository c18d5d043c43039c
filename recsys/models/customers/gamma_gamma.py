"""Gamma-Gamma spend model and the customer lifetime value it yields with BG/NBD.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", Journal of
Marketing Research 42(4); the likelihood and CLV sum follow ``lifetimes.GammaGammaFitter``. Each
transaction's spend is Gamma(p, nu) and a customer's nu ~ Gamma(q, gamma), so a customer's mean spend
over x repeat transactions, m, has a closed-form likelihood. It assumes spend is independent of purchase
frequency; only repeat customers (x > 0) carry information, their ``monetary_value`` being the mean
spend of their repeat transactions.

The population mean spend is p * gamma / (q - 1): q <= 1 makes it infinite, a fit that must not be
served (:class:`~recsys.models.customers.bgnbd.DegenerateFitError`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from recsys.models.customers.bgnbd import (
    BetaGeoModel,
    DegenerateFitError,
    MaximumLikelihoodModel,
    minimize_log_params,
    validate_rfm,
)

# Months per time unit of the purchase model, as in lifetimes' customer_lifetime_value.
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345, "M": 1.0}


def _repeat_customers(frequency, monetary_value) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    if x.shape != m.shape:
        raise ValueError(f"frequency has shape {x.shape} but monetary_value has {m.shape}")
    if not (np.isfinite(x).all() and np.isfinite(m).all()) or (x < 0).any() or (m < 0).any():
        raise ValueError("frequency and monetary_value must be finite and >= 0")
    repeat = x > 0
    if (m[repeat] <= 0).any():
        raise ValueError("repeat customers need monetary_value > 0 (the model's spend is positive)")
    return x[repeat], m[repeat]


def _log_likelihood_terms(log_params: np.ndarray, x, m, with_gradient: bool):
    """Per-customer log-likelihood of mean spend m over x transactions, and its log-parameter gradient."""
    p, q, v = np.exp(log_params)
    px = p * x
    log_xm_v = np.log(x * m + v)
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
          + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_xm_v)
    if not with_gradient:
        return ll, None
    psi_pxq = digamma(px + q)
    d_p = x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - log_xm_v)
    d_q = psi_pxq - digamma(q) + np.log(v) - log_xm_v
    d_v = q / v - (px + q) / (x * m + v)
    return ll, np.stack([d_p * p, d_q * q, d_v * v])


class GammaGammaModel(MaximumLikelihoodModel):
    """Gamma-Gamma spend model: ``fit`` on (frequency, monetary_value), then expected spend and CLV.

    ``penalizer`` is lifetimes' L2 penalty on (p, q, gamma), added to the mean negative log-likelihood.
    ``params_`` holds ``p``, ``q`` and ``gamma`` (lifetimes calls the last one ``v``).
    """

    PARAM_NAMES = ("p", "q", "gamma")
    DISPLAY_NAME = "Gamma-Gamma"

    def fit(self, frequency, monetary_value) -> GammaGammaModel:
        """Fit on the customers with ``frequency > 0``; the others are ignored."""
        x, m = _repeat_customers(frequency, monetary_value)
        if x.size < 3:
            raise ValueError(f"need at least 3 repeat customers to fit 3 parameters, got {x.size}")
        n = float(x.size)

        def objective(log_params):
            ll, gradient = _log_likelihood_terms(log_params, x, m, with_gradient=True)
            params = np.exp(log_params)
            value = -ll.sum() / n + self.penalizer * float(params @ params)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(log_params)
            return float(value), -gradient.sum(axis=1) / n + 2.0 * self.penalizer * params * params

        # q = 2 keeps the start's mean spend p * gamma / (q - 1) finite and equal to the sample mean.
        start = np.log([1.0, 2.0, float(np.mean(m))])
        result = minimize_log_params(objective, start, self.max_iterations)
        self.params_ = dict(zip(self.PARAM_NAMES, map(float, np.exp(result.x)), strict=True))
        self.log_likelihood_ = float(_log_likelihood_terms(result.x, x, m, with_gradient=False)[0].sum())
        reasons = self._optimizer_reasons(result)
        if self.params_["q"] <= 1.0:
            reasons.append(f"q={self.params_['q']:.3g} <= 1: the population mean spend is infinite")
        self.fit_diagnostics_ = self._diagnostics(result, reasons,
                                                  {"population_mean_spend": self._population_mean_spend()})
        return self

    def _population_mean_spend(self) -> float:
        p, q, v = self._params()
        return p * v / (q - 1.0) if q > 1.0 else float("inf")

    def conditional_expected_average_profit(self, frequency, monetary_value) -> np.ndarray:
        """E[spend per transaction | x, m] = (q - 1)/(p x + q - 1) * pop. mean + p x/(p x + q - 1) * m.

        Customers without repeats (x = 0) get the population mean.
        """
        p, q, v = self._params()
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        if (x < 0).any() or (m < 0).any():
            raise ValueError("frequency and monetary_value must be >= 0")
        denominator = p * x + q - 1.0
        if (denominator <= 0).any():
            raise DegenerateFitError("Gamma-Gamma", (f"q={q:.3g}: expected spend is infinite",))
        return p * (v + x * m) / denominator

    def customer_lifetime_value(
        self,
        bgnbd_model: BetaGeoModel,
        frequency,
        recency,
        T,
        monetary_value,
        time_months: int = 12,
        discount_rate: float = 0.01,
        freq: str = "D",
    ) -> np.ndarray:
        """Discounted expected spend over the next ``time_months`` months (lifetimes' definition).

        Month k contributes expected purchases in month k times the expected spend per purchase,
        divided by (1 + discount_rate)^k; ``discount_rate`` is monthly. ``freq`` is the time unit the
        BG/NBD model was fitted in (``"D"``, ``"W"`` or ``"M"``; a month is 30 days or 4.345 weeks).
        Both models must pass :meth:`check`.
        """
        if freq not in PERIODS_PER_MONTH:
            raise ValueError(f"freq must be one of {sorted(PERIODS_PER_MONTH)}, got {freq!r}")
        if time_months < 1 or int(time_months) != time_months:
            raise ValueError(f"time_months must be a whole number >= 1, got {time_months}")
        if discount_rate <= -1:
            raise ValueError(f"discount_rate must be > -1, got {discount_rate}")
        self.check()
        bgnbd_model.check()
        x, t_x, T = validate_rfm(frequency, recency, T)
        spend = self.conditional_expected_average_profit(x, np.broadcast_to(monetary_value, x.shape))
        months = np.arange(0, int(time_months) + 1, dtype=np.float64)
        horizons = months[:, None] * PERIODS_PER_MONTH[freq]
        cumulative = bgnbd_model.conditional_expected_number_of_purchases_up_to_time(
            horizons, x[None, :], t_x[None, :], T[None, :]
        )
        per_month = np.diff(cumulative, axis=0)
        discount = (1.0 + discount_rate) ** -months[1:]
        return spend * (discount @ per_month)
