"""Next best offer: which offers a customer may get (and why), ranked by expected incremental value.

expected value = P(redeem) x value - cost, with P(redeem) from the Beta posterior of the offer in the
customer's segment. Given a random generator, P(redeem) is a Thompson draw from that posterior
(exploration); without one it is the posterior mean (exploitation only; with no outcomes recorded,
that is the marketers' static prior).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from recsys.offers.bandit import BetaPosterior, Outcomes, OutcomeTable, ThompsonDraws
from recsys.offers.catalogue import Catalogue, Offer, OfferType
from recsys.records import CustomerProfile

#: Segment of a customer whose profile has none, for priors and outcome counts.
UNKNOWN_SEGMENT = "unknown"


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reasons: list[str]  # the rules that held, or (when not eligible) the first rule that failed


@dataclass(slots=True)
class OfferDecision:
    offer_id: str
    name: str
    type: str
    segment: str
    p_redeem: float  # what the ranking used: a posterior draw when exploring, else the posterior mean
    p_mean: float
    alpha: float
    beta: float
    value: float
    cost: float
    expected_value: float
    #: builds the eligibility reasons; called only for the offers a customer is actually shown, since
    #: formatting them for every candidate costs more than ranking
    explain: Callable[[], list[str]] = field(repr=False, compare=False)
    recommended_item: str | None = None
    _reasons: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def reasons(self) -> list[str]:
        if self._reasons is None:
            self._reasons = self.explain()
        return self._reasons

    def to_dict(self) -> dict:
        return {"offer_id": self.offer_id, "name": self.name, "type": self.type, "segment": self.segment,
                "p_redeem": round(self.p_redeem, 6), "p_mean": round(self.p_mean, 6),
                "posterior": {"alpha": self.alpha, "beta": self.beta}, "value": self.value, "cost": self.cost,
                "expected_value": round(self.expected_value, 6), "reasons": list(self.reasons),
                "recommended_item": self.recommended_item}


def check_eligibility(offer: Offer, profile: CustomerProfile, now: datetime,
                      recommended_item: str | None = None, explain: bool = True) -> Eligibility:
    """Evaluate every rule of the offer against one profile, in the catalogue's order.

    ``explain=False`` decides without writing the reasons (the ranking's fast path)."""
    if not explain:
        return Eligibility(_eligible(offer, profile, now, recommended_item), [])
    reasons: list[str] = []
    if not offer.validity.contains(_aware(now)):
        return Eligibility(False, [f"outside validity window at {_aware(now).isoformat()}"])
    rules = offer.eligibility
    if rules.segments is not None:
        if profile.segment not in rules.segments:
            return Eligibility(False, [f"segment {profile.segment!r} not in {rules.segments}"])
        reasons.append(f"segment {profile.segment!r} in {rules.segments}")
    for label, bounds, value in (("churn_probability", rules.churn_probability, profile.churn_probability),
                                 ("clv", rules.clv, profile.clv),
                                 ("orders", rules.orders, profile.frequency),
                                 ("days_since_last_purchase", rules.days_since_last_purchase,
                                  profile.recency_days)):
        if bounds is None:
            continue
        if value is None:
            return Eligibility(False, [f"{label} unknown for this customer"])
        if not bounds.contains(float(value)):
            return Eligibility(False, [f"{label} {float(value):g} not {bounds.describe()}"])
        reasons.append(f"{label} {float(value):g} {bounds.describe()}")
    if rules.countries is not None:
        if profile.country not in rules.countries:
            return Eligibility(False, [f"country {profile.country!r} not in {rules.countries}"])
        reasons.append(f"country {profile.country!r} in {rules.countries}")
    if offer.type is OfferType.BUNDLE:
        if recommended_item is None:
            return Eligibility(False, ["bundle needs a recommended item and the customer has none"])
        reasons.append(f"bundle with top recommendation {recommended_item!r}")
    if not reasons:
        reasons.append("no eligibility rules: open to every customer")
    return Eligibility(True, reasons)


def _eligible(offer: Offer, profile: CustomerProfile, now: datetime, recommended_item: str | None) -> bool:
    """The verdict of :func:`check_eligibility` without its reasons; the two must agree (tested)."""
    if not offer.validity.contains(_aware(now)):
        return False
    rules = offer.eligibility
    if rules.segments is not None and profile.segment not in rules.segments:
        return False
    for bounds, value in ((rules.churn_probability, profile.churn_probability), (rules.clv, profile.clv),
                          (rules.orders, profile.frequency),
                          (rules.days_since_last_purchase, profile.recency_days)):
        if bounds is not None and (value is None or not bounds.contains(float(value))):
            return False
    if rules.countries is not None and profile.country not in rules.countries:
        return False
    return offer.type is not OfferType.BUNDLE or recommended_item is not None


def posterior(offer: Offer, segment: str, outcomes: OutcomeTable) -> BetaPosterior:
    prior = offer.prior_for(segment)
    return BetaPosterior(prior.alpha, prior.beta).updated(outcomes.get((offer.id, segment), Outcomes()))


def rank_offers(catalogue: Catalogue, profile: CustomerProfile, now: datetime, *,
                outcomes: OutcomeTable | None = None, rng: np.random.Generator | None = None,
                recommended_item: str | None = None,
                beliefs: MutableMapping[tuple[str, str], ThompsonDraws] | None = None) -> list[OfferDecision]:
    """The customer's eligible offers, best expected incremental value first (ties by offer id).

    ``beliefs`` memoises the posteriors of ``outcomes`` and their draws across calls (the caller
    empties it whenever ``outcomes`` changes)."""
    outcomes = outcomes or {}
    segment = profile.segment or UNKNOWN_SEGMENT
    now = _aware(now)
    decisions = []
    for offer in catalogue.offers:
        if not _eligible(offer, profile, now, recommended_item):
            continue
        memo = beliefs.get((offer.id, segment)) if beliefs is not None else None
        if memo is None:
            belief = posterior(offer, segment, outcomes)
            if beliefs is not None:
                memo = beliefs[(offer.id, segment)] = ThompsonDraws(belief)
        else:
            belief = memo.posterior
        if rng is None:
            p = belief.mean
        elif memo is not None:
            p = memo.draw(rng)
        else:
            p = belief.sample(rng)
        decisions.append(OfferDecision(
            offer.id, offer.name, offer.type.value, segment, p, belief.mean, belief.alpha, belief.beta,
            offer.value, offer.cost, p * offer.value - offer.cost,
            _explainer(offer, profile, now, recommended_item),
            recommended_item if offer.type is OfferType.BUNDLE else None))
    decisions.sort(key=lambda d: (-d.expected_value, d.offer_id))
    return decisions


def _explainer(offer: Offer, profile: CustomerProfile, now: datetime,
               recommended_item: str | None) -> Callable[[], list[str]]:
    return lambda: check_eligibility(offer, profile, now, recommended_item).reasons


def count_eligible(catalogue: Catalogue, profiles: Iterable[CustomerProfile], now: datetime,
                   has_recommendation: bool = True) -> Mapping[str, int]:
    """Customers eligible for each offer; bundles assume every customer has a top recommendation
    unless ``has_recommendation`` is false."""
    counts = {offer.id: 0 for offer in catalogue.offers}
    item = "any" if has_recommendation else None
    for profile in profiles:
        for offer in catalogue.offers:
            if _eligible(offer, profile, now, item):
                counts[offer.id] += 1
    return counts


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
