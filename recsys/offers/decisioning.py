"""Next best offer: which offers a customer may get (and why), ranked by expected incremental value.

expected value = P(redeem) x value - cost, with P(redeem) from the Beta posterior of the offer in the
customer's segment. Given a random generator, P(redeem) is a Thompson draw from that posterior
(exploration); without one it is the posterior mean (exploitation only; with no outcomes recorded,
that is the marketers' static prior).
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np

from recsys.offer_profiles import OfferProfiles
from recsys.offers.bandit import BetaPosterior, Outcomes, OutcomeTable, ThompsonDraws
from recsys.offers.catalogue import UNKNOWN_SEGMENT, Catalogue, Offer, OfferType
from recsys.records import CustomerProfile, keys_with_a_top_item, slugify


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
    #: what the eligibility reasons are written from (offer, profile, time, recommended item): they are
    #: written only for the offers a customer is actually shown, since formatting them for every
    #: candidate costs more than ranking
    context: tuple = field(repr=False, compare=False)
    recommended_item: str | None = None
    _reasons: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def reasons(self) -> list[str]:
        if self._reasons is None:
            self._reasons = check_eligibility(*self.context).reasons
        return self._reasons

    def to_dict(self) -> dict:
        return {"offer_id": self.offer_id, "name": self.name, "type": self.type, "segment": self.segment,
                "p_redeem": round(self.p_redeem, 6), "p_mean": round(self.p_mean, 6),
                "posterior": {"alpha": self.alpha, "beta": self.beta}, "value": self.value, "cost": self.cost,
                "expected_value": round(self.expected_value, 6), "reasons": list(self.reasons),
                "recommended_item": self.recommended_item}


def check_eligibility(offer: Offer, profile: CustomerProfile, now: datetime,
                      recommended_item: str | None = None) -> Eligibility:
    """Evaluate every rule of the offer against one profile, in the catalogue's order."""
    reasons: list[str] = []
    if not offer.validity.contains(_aware(now)):
        return Eligibility(False, [f"outside validity window at {_aware(now).isoformat()}"])
    rules = offer.eligibility
    if rules.segments is not None:
        if _slug(profile.segment) not in {slugify(name) for name in rules.segments}:
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


@dataclass(frozen=True, slots=True)
class _Rules:
    """One offer's eligibility as plain values: the verdict of :func:`check_eligibility` without its
    reasons (the two must agree: tested), checked for every offer on every decision."""

    offer: Offer
    segments: frozenset[str] | None
    bounds: tuple[tuple[str, float, float], ...]  # (profile attribute, lowest, highest), inclusive
    countries: frozenset[str] | None
    bundle: bool

    @classmethod
    def of(cls, offer: Offer) -> _Rules:
        rules = offer.eligibility
        bounds = tuple(
            (attribute, -math.inf if r.min is None else r.min, math.inf if r.max is None else r.max)
            for attribute, r in (("churn_probability", rules.churn_probability), ("clv", rules.clv),
                                 ("frequency", rules.orders), ("recency_days", rules.days_since_last_purchase))
            if r is not None)
        return cls(offer, None if rules.segments is None else frozenset(map(slugify, rules.segments)), bounds,
                   None if rules.countries is None else frozenset(rules.countries), offer.type is OfferType.BUNDLE)

    def admit(self, profile: CustomerProfile, now: datetime, recommended_item: str | None) -> bool:
        if not self.offer.validity.contains(now):
            return False
        if self.segments is not None and _slug(profile.segment) not in self.segments:
            return False
        for attribute, lowest, highest in self.bounds:
            value = getattr(profile, attribute)
            if value is None or not lowest <= value <= highest:
                return False
        if self.countries is not None and profile.country not in self.countries:
            return False
        return recommended_item is not None or not self.bundle


_RULES: dict[str, tuple[_Rules, ...]] = {}


@lru_cache(maxsize=4096)
def _slug(segment: str | None) -> str | None:
    # Segments match by slug, as the segment API does: a catalogue may say at_risk or "At Risk" for the
    # customer job's "At Risk". A shop has a handful of segment names, so each is slugged once.
    return None if segment is None else slugify(segment)


def _rules_of(catalogue: Catalogue) -> tuple[_Rules, ...]:
    """Every offer's rules, built once per catalogue version (a content hash, so the same rules)."""
    rules = _RULES.get(catalogue.version)
    if rules is None:
        if len(_RULES) >= 8:
            _RULES.clear()
        rules = _RULES[catalogue.version] = tuple(_Rules.of(offer) for offer in catalogue.offers)
    return rules


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
    for rules in _rules_of(catalogue):
        if not rules.admit(profile, now, recommended_item):
            continue
        offer = rules.offer
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
            offer.value, offer.cost, p * offer.value - offer.cost, (offer, profile, now, recommended_item),
            recommended_item if rules.bundle else None))
    decisions.sort(key=lambda d: (-d.expected_value, d.offer_id))
    return decisions


def count_eligible(catalogue: Catalogue, profiles: Iterable[CustomerProfile], now: datetime,
                   recommended: Container[str] | None = None) -> Mapping[str, int]:
    """Customers eligible for each offer. A bundle carries the customer's top recommendation, so only the
    customers in ``recommended`` (ids of those who have one) can get it; ``None`` counts everyone as having
    one."""
    return _count_eligible(catalogue, ((p, recommended is None or p.customer_id in recommended) for p in profiles),
                           now)


def count_eligible_held(catalogue: Catalogue, held: OfferProfiles, now: datetime) -> Mapping[str, int]:
    """:func:`count_eligible` over the offer profiles a serving worker holds, which know each customer's top
    recommended item: no store read."""
    rows = (held.profile(row) for row in range(len(held)))
    return _count_eligible(catalogue, ((profile, top_item >= 0) for profile, top_item in rows), now)


def _count_eligible(catalogue: Catalogue, customers: Iterable[tuple[CustomerProfile, bool]],
                    now: datetime) -> Mapping[str, int]:
    """Eligible customers per offer, from ``(profile, whether they have a top recommendation)`` pairs."""
    counts = {offer.id: 0 for offer in catalogue.offers}
    rules = _rules_of(catalogue)
    now = _aware(now)
    for profile, has_top_item in customers:
        item = "any" if has_top_item else None
        for offer_rules in rules:
            if offer_rules.admit(profile, now, item):
                counts[offer_rules.offer.id] += 1
    return counts


def count_eligible_records(catalogue: Catalogue, batch: Sequence[tuple[str, bytes]], now: datetime,
                           customer_records: Sequence[bytes | None] | None) -> Mapping[str, int]:
    """:func:`count_eligible` over ``(customer id, profile bytes)`` pairs as a snapshot stores them, given the
    same customers' recommendation records when the catalogue has a bundle (``None`` when it has none,
    see :func:`needs_recommendations`)."""
    recommended = None if customer_records is None else keys_with_a_top_item([key for key, _ in batch],
                                                                               customer_records)
    return count_eligible(catalogue, (CustomerProfile.from_bytes(value) for _, value in batch), now, recommended)


def needs_recommendations(catalogue: Catalogue) -> bool:
    """Whether any offer carries the customer's top recommendation (a bundle)."""
    return any(offer.type is OfferType.BUNDLE for offer in catalogue.offers)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
