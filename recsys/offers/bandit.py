"""Beta-Bernoulli learning of redemption rates per offer and segment, and Thompson sampling.

The prior of an (offer, segment) pair is the marketer's guess from the catalogue; outcomes add
redemptions to alpha and impressions without redemption to beta. Sampling from the posterior rather
than ranking by its mean is what makes the policy try offers it is unsure of, and stop once it is sure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Outcomes:
    """What has been observed for one (offer, segment): impressions and the redemptions among them."""

    impressions: int = 0
    redemptions: int = 0

    @property
    def failures(self) -> int:
        # Redemptions recorded for offers shown through another channel may outnumber our impressions.
        return max(self.impressions - self.redemptions, 0)


@dataclass(frozen=True)
class BetaPosterior:
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and self.beta > 0):
            raise ValueError(f"Beta parameters must be positive, got alpha={self.alpha}, beta={self.beta}")

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def updated(self, outcomes: Outcomes) -> BetaPosterior:
        return BetaPosterior(self.alpha + outcomes.redemptions, self.beta + outcomes.failures)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.beta(self.alpha, self.beta))


class ThompsonDraws:
    """Posterior draws of one (offer, segment), taken from the generator a block at a time.

    Serving keeps the posteriors fixed between outcome refreshes, so draws are independent and
    identically distributed whether taken one by one or in blocks; a block costs one generator call
    instead of one per decision."""

    __slots__ = ("posterior", "block", "_draws", "_next")

    def __init__(self, posterior: BetaPosterior, block: int = 256) -> None:
        self.posterior, self.block = posterior, block
        self._draws: list[float] = []
        self._next = 0

    def draw(self, rng: np.random.Generator) -> float:
        if self._next == len(self._draws):
            self._draws = rng.beta(self.posterior.alpha, self.posterior.beta, self.block).tolist()
            self._next = 0
        self._next += 1
        return self._draws[self._next - 1]


#: Observed outcomes keyed by (offer id, segment).
OutcomeTable = Mapping[tuple[str, str], Outcomes]


class OutcomeCounter:
    """An in-memory outcome table, for simulations and tests; serving keeps the counts in the store."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str], Outcomes] = {}

    def record(self, offer_id: str, segment: str, redeemed: bool) -> None:
        seen = self.table.get((offer_id, segment), Outcomes())
        self.table[(offer_id, segment)] = Outcomes(seen.impressions + 1, seen.redemptions + int(redeemed))


def outcome_fields(segment: str) -> tuple[str, str]:
    """Field names under which a store's per-offer hash counts a segment's impressions and redemptions."""
    return f"{segment}|impressions", f"{segment}|redemptions"


def outcomes_from_fields(offer_id: str, fields: Mapping[str, int]) -> dict[tuple[str, str], Outcomes]:
    """Turn a per-offer hash of ``<segment>|impressions`` / ``<segment>|redemptions`` counts into a table."""
    counts: dict[str, list[int]] = {}
    for name, value in fields.items():
        segment, _, kind = name.rpartition("|")
        if kind in ("impressions", "redemptions"):
            counts.setdefault(segment, [0, 0])[kind == "redemptions"] = int(value)
    return {(offer_id, segment): Outcomes(*pair) for segment, pair in counts.items()}
