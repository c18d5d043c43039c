"""Personalised offers: the catalogue marketers edit, eligibility, learning from outcomes, ranking."""

from recsys.offers.bandit import BetaPosterior, OutcomeCounter, Outcomes, outcome_fields, outcomes_from_fields
from recsys.offers.catalogue import Catalogue, CatalogueError, Offer, OfferType, load_catalogue, parse_catalogue
from recsys.offers.decisioning import (
    UNKNOWN_SEGMENT,
    Eligibility,
    OfferDecision,
    check_eligibility,
    count_eligible,
    count_eligible_held,
    count_eligible_records,
    needs_recommendations,
    posterior,
    rank_offers,
)

#: Snapshot namespace holding the validated catalogue, and its one key.
OFFERS_NAMESPACE = "offers"
CATALOGUE_KEY = "catalogue"

__all__ = [
    "CATALOGUE_KEY",
    "OFFERS_NAMESPACE",
    "UNKNOWN_SEGMENT",
    "BetaPosterior",
    "Catalogue",
    "CatalogueError",
    "Eligibility",
    "Offer",
    "OfferDecision",
    "OfferType",
    "OutcomeCounter",
    "Outcomes",
    "check_eligibility",
    "count_eligible",
    "count_eligible_held",
    "count_eligible_records",
    "load_catalogue",
    "needs_recommendations",
    "outcome_fields",
    "outcomes_from_fields",
    "parse_catalogue",
    "posterior",
    "rank_offers",
]
