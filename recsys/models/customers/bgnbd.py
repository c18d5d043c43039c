"""BG/NBD: how many more purchases a customer will make, and whether they are still "alive".

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD
Model", Marketing Science 24(2). While alive, a customer buys at Poisson rate lambda ~ Gamma(r, alpha);
after each purchase they drop out with probability p ~ Beta(a, b). A customer is summarised by
``frequency`` x (repeat purchases), ``recency`` t_x (first to last purchase) and ``T`` (first purchase to
the end of observation), all in one time unit.

The fit maximises the exact log-likelihood over log-parameters with L-BFGS-B and an analytic gradient.
The per-customer log-likelihood is the paper's (its sum is the published -9582.4 on CDNOW), without a
``log x!`` term: it is the density of the purchase times, not of a count.

Maximum likelihood can land on parameters that fit the data but say nothing useful: on Online Retail
the dropout probability collapses to zero and every customer is "alive" with probability 1. Each fit
records :class:`FitDiagnostics`; callers that serve predictions must refuse a ``degenerate`` fit
(:meth:`BetaGeoModel.check` raises :class:`DegenerateFitError`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

# Log-parameter box: wide enough for any sensible customer base; touching it means the likelihood kept
# improving towards a limit (a -> 0, b -> inf, ...) rather than having an interior maximum.
LOG_PARAM_BOUNDS = (-18.0, 18.0)
_BOUND_MARGIN = 1e-3
_DROPOUT_COLLAPSE = 1e-6
# "P(alive) ~ 1 for everyone": fewer than 1% of repeat customers below 0.9. On CDNOW 98% are below it.
_ALIVE_LEVEL = 0.9
_ALIVE_MIN_SHARE = 0.01
# Likelihood-ratio statistic of BG/NBD against its no-dropout limit (a -> 0: an NBD whose customers
# never leave), one parameter apart: below the chi-square(1) 95% point the data do not identify dropout.
_DROPOUT_LR_CRITICAL = 3.841


class DegenerateFitError(RuntimeError):
    """A customer model fitted to parameters that must not be served; ``reasons`` says why."""

    def __init__(self, model: str, reasons: tuple[str, ...]):
        self.reasons = reasons
        super().__init__(f"{model} fit is degenerate: " + "; ".join(reasons))


@dataclass(frozen=True)
class FitDiagnostics:
    """What the optimiser reported and whether the fitted parameters are usable."""

    converged: bool
    message: str
    n_iterations: int
    n_evaluations: int
    gradient_norm: float
    reasons: tuple[str, ...]
    checks: dict[str, float]

    @property
    def degenerate(self) -> bool:
        return bool(self.reasons)


def validate_rfm(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float arrays of equal length with 0 <= recency <= T and whole, non-negative frequency."""
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    x, t_x, T = np.broadcast_arrays(x, t_x, T)
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
        raise ValueError("frequency, recency and T must be finite")
    if (x < 0).any() or (x != np.round(x)).any():
        raise ValueError("frequency must be a whole number >= 0 (repeat purchases)")
    if (t_x < 0).any() or (t_x > T * (1 + 1e-12)).any():
        raise ValueError("recency must lie in [0, T]")
    if ((x == 0) & (t_x != 0)).any():
        raise ValueError("recency must be 0 for customers without repeat purchases")
    return x, t_x, T


def _log_likelihood_terms(log_params: np.ndarray, x, t_x, T, with_gradient: bool):
    """Per-customer log-likelihood and, optionally, its gradient in log-parameters (4 x n)."""
    r, alpha, a, b = np.exp(log_params)
    repeat = x > 0
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + t_x)
    # The two ways to produce the data: still alive at T, or dropped out right after the last purchase
    # (only possible with repeat purchases, hence -inf for x = 0).
    branch_alive = -(r + x) * log_alpha_T
    with np.errstate(divide="ignore"):
        branch_dead = np.where(
            repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * log_alpha_tx, -np.inf
        )
    mixture = np.logaddexp(branch_alive, branch_dead)
    ll = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        + betaln(a, b + x) - betaln(a, b)
        + mixture
    )
    if not with_gradient:
        return ll, None
    w_alive = np.exp(branch_alive - mixture)
    w_dead = np.exp(branch_dead - mixture)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * log_alpha_T - w_dead * log_alpha_tx
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + T) + w_dead / (alpha + t_x))
    psi_ab_x = digamma(a + b + x)
    d_a = digamma(a + b) - psi_ab_x + w_dead / a
    d_b = (digamma(b + x) - digamma(b) + digamma(a + b) - psi_ab_x
           - w_dead / np.where(repeat, b + x - 1, 1.0))
    gradient = np.stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return ll, gradient


class _Objective:
    """Mean negative log-likelihood (+ L2 penalty) over unique (x, t_x, T) rows with counts as weights.

    Customers sharing a summary are common (every one-time buyer of a cohort), so fitting on unique
    rows does the same maths in fewer evaluations.
    """

    def __init__(self, x, t_x, T, penalizer: float):
        rows, counts = np.unique(np.stack([x, t_x, T], axis=1), axis=0, return_counts=True)
        self.x, self.t_x, self.T = rows[:, 0], rows[:, 1], rows[:, 2]
        self.weights = counts.astype(np.float64)
        self.n = float(counts.sum())
        self.penalizer = penalizer

    def __call__(self, log_params: np.ndarray) -> tuple[float, np.ndarray]:
        ll, gradient = _log_likelihood_terms(log_params, self.x, self.t_x, self.T, with_gradient=True)
        params = np.exp(log_params)
        value = -(self.weights @ ll) / self.n + self.penalizer * float(params @ params)
        grad = -(gradient @ self.weights) / self.n + 2.0 * self.penalizer * params * params
        if not np.isfinite(value):
            # Let the line search back off instead of aborting on an overflow at an extreme trial point.
            return np.inf, np.zeros_like(log_params)
        return float(value), grad


def _no_dropout_log_likelihood(objective: _Objective, r: float, alpha: float) -> float:
    """Maximised log-likelihood of the a -> 0 limit of BG/NBD, where nobody ever drops out."""
    x, T, weights = objective.x, objective.T, objective.weights

    def negative(log_params):
        r, alpha = np.exp(log_params)
        log_alpha_T = np.log(alpha + T)
        ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * log_alpha_T
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - log_alpha_T
        d_alpha = r / alpha - (r + x) / (alpha + T)
        value = -(weights @ ll) / objective.n
        if not np.isfinite(value):
            return np.inf, np.zeros(2)
        return float(value), -np.array([r * (weights @ d_r), alpha * (weights @ d_alpha)]) / objective.n

    result = minimize_log_params(negative, np.log([r, alpha]), 1000)
    return -float(result.fun) * objective.n


def _starting_point(x, t_x, T) -> np.ndarray:
    # Rate: repeat purchases per unit of observed time; r = 1 keeps the gamma broad. a = 1, b = 3 puts
    # the mean dropout probability at 0.25, the right order for retail.
    rate = max(x.sum(), 1.0) / max(T.sum(), 1e-12)
    return np.log(np.array([1.0, 1.0 / rate, 1.0, 3.0]))


def _bound_reasons(names, log_params) -> list[str]:
    low, high = LOG_PARAM_BOUNDS
    return [
        f"{name}={np.exp(value):.3g} reached the parameter bound (no interior maximum)"
        for name, value in zip(names, log_params, strict=True)
        if value <= low + _BOUND_MARGIN or value >= high - _BOUND_MARGIN
    ]


def minimize_log_params(objective, start: np.ndarray, max_iterations: int):
    return minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[LOG_PARAM_BOUNDS] * len(start),
        options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
    )


class MaximumLikelihoodModel:
    """What the customer-base models share: an L2 ``penalizer`` on the parameters (lifetimes'
    ``penalizer_coef``), an iteration cap, fitted ``params_``/``log_likelihood_``/``fit_diagnostics_``,
    and the refusal to be used when the fit is degenerate."""

    PARAM_NAMES: tuple[str, ...] = ()
    DISPLAY_NAME = "model"

    def __init__(self, penalizer: float = 0.0, max_iterations: int = 1000):
        if penalizer < 0:
            raise ValueError(f"penalizer must be >= 0, got {penalizer}")
        self.penalizer = float(penalizer)
        self.max_iterations = int(max_iterations)
        self.params_: dict[str, float] | None = None
        self.log_likelihood_: float | None = None
        self.fit_diagnostics_: FitDiagnostics | None = None

    def check(self):
        """Raise :class:`DegenerateFitError` unless the fit is usable; returns self for chaining."""
        diagnostics = self._fitted_diagnostics()
        if diagnostics.degenerate:
            raise DegenerateFitError(self.DISPLAY_NAME, diagnostics.reasons)
        return self

    def _fitted_diagnostics(self) -> FitDiagnostics:
        if self.fit_diagnostics_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return self.fit_diagnostics_

    def _params(self) -> tuple[float, ...]:
        if self.params_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return tuple(self.params_[name] for name in self.PARAM_NAMES)

    def _optimizer_reasons(self, result) -> list[str]:
        """Why an optimisation result cannot be trusted, whatever the model."""
        reasons = []
        if not result.success:
            reasons.append(f"optimizer did not converge: {result.message}")
        if not np.isfinite(result.fun) or not np.isfinite(result.x).all():
            reasons.append("non-finite log-likelihood or parameters")
        return reasons + _bound_reasons(self.PARAM_NAMES, result.x)

    @staticmethod
    def _diagnostics(result, reasons: list[str], checks: dict[str, float]) -> FitDiagnostics:
        return FitDiagnostics(
            converged=bool(result.success),
            message=str(result.message),
            n_iterations=int(result.nit),
            n_evaluations=int(result.nfev),
            gradient_norm=float(np.linalg.norm(result.jac)),
            reasons=tuple(reasons),
            checks=checks,
        )


class BetaGeoModel(MaximumLikelihoodModel):
    """BG/NBD model: ``fit`` on (frequency, recency, T), then predict per customer.

    ``penalizer`` adds ``penalizer * sum(params**2)`` to the mean negative log-likelihood, the same L2
    penalty as ``lifetimes.BetaGeoFitter(penalizer_coef=...)``; 0 gives plain maximum likelihood.
    """

    PARAM_NAMES = ("r", "alpha", "a", "b")
    DISPLAY_NAME = "BG/NBD"

    def fit(self, frequency, recency, T) -> BetaGeoModel:
        x, t_x, T = validate_rfm(frequency, recency, T)
        if x.size == 0:
            raise ValueError("cannot fit on zero customers")
        objective = _Objective(x, t_x, T, self.penalizer)
        result = minimize_log_params(objective, _starting_point(x, t_x, T), self.max_iterations)
        self.params_ = dict(zip(self.PARAM_NAMES, map(float, np.exp(result.x)), strict=True))
        ll, _ = _log_likelihood_terms(result.x, objective.x, objective.t_x, objective.T, with_gradient=False)
        self.log_likelihood_ = float(objective.weights @ ll)
        self.fit_diagnostics_ = self._diagnose(result, objective, x, t_x, T)
        return self

    def _diagnose(self, result, objective: _Objective, x, t_x, T) -> FitDiagnostics:
        reasons = self._optimizer_reasons(result)
        checks = {}
        a, b = self.params_["a"], self.params_["b"]
        if a / (a + b) < _DROPOUT_COLLAPSE:
            reasons.append(f"mean dropout probability a/(a+b)={a / (a + b):.2g} collapsed to 0")
        if (x > 0).any():
            alive = self.conditional_probability_alive(x[x > 0], t_x[x > 0], T[x > 0])
            share = float(np.mean(alive < _ALIVE_LEVEL))
            checks["share_repeat_alive_below_0.9"] = share
            if share < _ALIVE_MIN_SHARE:
                reasons.append(
                    f"P(alive) >= {_ALIVE_LEVEL} for {1 - share:.2%} of repeat customers:"
                    " the fit cannot tell active from lapsed customers"
                )
        if np.isfinite(self.log_likelihood_):
            null_ll = _no_dropout_log_likelihood(objective, self.params_["r"], self.params_["alpha"])
            statistic = 2.0 * (self.log_likelihood_ - null_ll)
            checks["dropout_lr_statistic"] = statistic
            if statistic < _DROPOUT_LR_CRITICAL:
                reasons.append(
                    f"dropout is not identified: a model where nobody churns fits as well"
                    f" (likelihood-ratio statistic {statistic:.2f} < {_DROPOUT_LR_CRITICAL})"
                )
        return self._diagnostics(result, reasons, checks)

    def individual_log_likelihood(self, frequency, recency, T) -> np.ndarray:
        """Per-customer log-likelihood under the fitted parameters."""
        x, t_x, T = validate_rfm(frequency, recency, T)
        ll, _ = _log_likelihood_terms(np.log(self._params()), x, t_x, T, with_gradient=False)
        return ll

    def _log_dead_odds(self, x, t_x, T) -> np.ndarray:
        # log P(dropped out after the last purchase) - log P(alive), from the two likelihood branches.
        r, alpha, a, b = self._params()
        repeat = x > 0
        with np.errstate(divide="ignore"):
            return np.where(
                repeat,
                np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
                + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
                -np.inf,
            )

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(still alive at T | x, t_x, T); exactly 1 without repeat purchases (no chance to drop out)."""
        x, t_x, T = validate_rfm(frequency, recency, T)
        return expit(-self._log_dead_odds(x, t_x, T))

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (paper's eq. 10); ``t`` broadcasts against customers."""
        x, t_x, T = validate_rfm(frequency, recency, T)
        t = np.asarray(t, dtype=np.float64)
        if (t < 0).any():
            raise ValueError("t must be >= 0")
        r, alpha, a, b = self._params()
        z = t / (alpha + T + t)
        # ((alpha+T)/(alpha+T+t))^(r+x) = (1-z)^(r+x); log1p keeps it exact for small t.
        survive = np.exp((r + x) * np.log1p(-z))
        bracket = 1.0 - survive * hyp2f1(r + x, b + x, a + b + x - 1, z)
        numerator = (a + b + x - 1) / (a - 1) * bracket
        return numerator * self.conditional_probability_alive(x, t_x, T)

    def probability_of_no_purchase_within(self, t, frequency, recency, T) -> np.ndarray:
        """P(no purchase in (T, T + t] | x, t_x, T): a churn score that is 1 - P(alive) at t = 0.

        A BG/NBD customer only drops out right after a purchase, so one alive at T and silent through
        T + t is still alive; with lambda | alive ~ Gamma(r + x, alpha + T) the silent probability is
        ((alpha + T) / (alpha + T + t))^(r + x).
        """
        x, t_x, T = validate_rfm(frequency, recency, T)
        t = np.asarray(t, dtype=np.float64)
        if (t < 0).any():
            raise ValueError("t must be >= 0")
        r, alpha, _, _ = self._params()
        buy_if_alive = -np.expm1(-(r + x) * np.log1p(t / (alpha + T)))
        return 1.0 - self.conditional_probability_alive(x, t_x, T) * buy_if_alive

    def expected_number_of_purchases_up_to_time(self, t) -> np.ndarray:
        """E[X(t)] for a new customer over ``t`` units after their first purchase (paper's eq. 9)."""
        t = np.asarray(t, dtype=np.float64)
        if (t < 0).any():
            raise ValueError("t must be >= 0")
        r, alpha, a, b = self._params()
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1.0 - np.exp(r * np.log1p(-z)) * hyp2f1(r, b, a + b - 1, z))
