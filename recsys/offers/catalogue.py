"""The offer catalogue marketers edit: YAML, validated in full before anything uses it.

Every offer is checked on its own so that an error names the offer id and the field, e.g.
``offer 'winback10': eligibility.churn_probability: min 0.9 is above max 0.5``. A catalogue file may
name only the customer job's segments (names or slugs): a misspelt one would silently narrow who is
eligible. The catalogue's version is a hash of its validated content, so reformatting or comments do
not change it and any change of meaning does.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from collections.abc import Collection
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from recsys.records import slugify
from recsys.yaml_text import load_yaml

#: Segment of a customer whose profile has none, for priors and outcome counts.
UNKNOWN_SEGMENT = "unknown"


class CatalogueError(ValueError):
    """A catalogue that cannot be used; the message names the offer id and the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid offer catalogue:\n  " + "\n  ".join(problems))
        self.problems = problems


class OfferType(StrEnum):
    PERCENTAGE_DISCOUNT = "percentage_discount"
    FIXED_AMOUNT = "fixed_amount"
    FREE_SHIPPING = "free_shipping"
    BUNDLE = "bundle"
    LOYALTY_POINTS = "loyalty_points"


class _Strict(BaseModel):
    # A misspelled key in YAML must fail, not be silently ignored. YAML's .inf and .nan are refused: no cap,
    # window or budget is infinite (leave the field out for "no limit"), and JSON, which carries the
    # catalogue in a snapshot, cannot hold them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Range(_Strict):
    """Inclusive bounds; either may be left out."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both (leave the rule out for no restriction)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"in [{self.min:g}, {self.max:g}]"
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"


class ProbabilityRange(Range):
    """A range of probabilities: bounds in [0, 1], checked with the other fields so every problem shows."""

    min: float | None = Field(None, ge=0, le=1)
    max: float | None = Field(None, ge=0, le=1)


class Eligibility(_Strict):
    """Every rule given must hold; a rule left out does not restrict. A profile lacking the field a
    rule needs (e.g. no churn probability) is not eligible under that rule."""

    segments: list[str] | None = Field(None, min_length=1)
    churn_probability: ProbabilityRange | None = None
    clv: Range | None = None
    orders: Range | None = None
    countries: list[str] | None = Field(None, min_length=1)
    days_since_last_purchase: Range | None = None


class Validity(_Strict):
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Validity:
        start, end = _utc(self.starts_at), _utc(self.ends_at)
        if start is not None and end is not None and start >= end:
            raise ValueError(f"starts_at {self.starts_at} is not before ends_at {self.ends_at}")
        return self

    def contains(self, now: datetime) -> bool:
        start, end = self._utc_bounds
        return (start is None or now >= start) and (end is None or now < end)

    @cached_property
    def _utc_bounds(self) -> tuple[datetime | None, datetime | None]:
        # Checked for every offer on every decision; the window never changes.
        return _utc(self.starts_at), _utc(self.ends_at)


class Prior(_Strict):
    """A marketer's guess of the redemption rate, worth ``strength`` observed impressions."""

    redemption_rate: float = Field(gt=0, lt=1)
    strength: float = Field(20.0, gt=0)

    @property
    def alpha(self) -> float:
        return self.redemption_rate * self.strength

    @property
    def beta(self) -> float:
        return (1 - self.redemption_rate) * self.strength


class Budget(_Strict):
    """``max_redemptions`` stops redemptions; ``total`` (money) stops impressions once they have cost it,
    at the offer's ``cost`` per customer shown it. The offer is not shown once either is used up."""

    max_redemptions: int | None = Field(None, ge=1)
    total: float | None = Field(None, gt=0, description="money, in the same unit as value and cost")


class ContactPolicy(_Strict):
    """How often one customer may be shown offers at all, across the whole catalogue."""

    max_offers: int = Field(1, ge=1)
    window_days: float = Field(7, gt=0)


#: the term each type of offer is written with (others have none)
_TERMS = {OfferType.PERCENTAGE_DISCOUNT: "discount_percent", OfferType.BUNDLE: "discount_percent",
          OfferType.FIXED_AMOUNT: "amount", OfferType.LOYALTY_POINTS: "points"}


class Offer(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    name: str = Field(min_length=1)
    type: OfferType
    description: str = ""
    # validate_default: a term the type needs but the offer leaves out is reported with the other fields
    discount_percent: float | None = Field(None, gt=0, le=100, validate_default=True)
    amount: float | None = Field(None, gt=0, validate_default=True)
    points: int | None = Field(None, gt=0, validate_default=True)
    value: float = Field(ge=0, description="incremental margin when the offer is redeemed")
    cost: float = Field(ge=0, description="what making the offer costs per customer shown it")
    eligibility: Eligibility = Field(default_factory=Eligibility)
    validity: Validity = Field(default_factory=Validity)
    prior: Prior
    segment_priors: dict[str, Prior] = Field(default_factory=dict)
    repeat_after_days: float = Field(30, gt=0, description="the same offer is not shown again sooner")
    budget: Budget | None = None

    @field_validator("discount_percent", "amount", "points")
    @classmethod
    def _terms_match_type(cls, value: float | None, info: ValidationInfo) -> float | None:
        offer_type = info.data.get("type")
        if offer_type is None:
            return value  # the type itself is invalid, and reported
        required = _TERMS.get(offer_type)
        if info.field_name == required and value is None:
            raise ValueError(f"required for type {offer_type.value}")
        if value is not None and info.field_name != required:
            raise ValueError(f"does not apply to type {offer_type.value}")
        return value

    def prior_for(self, segment: str | None) -> Prior:
        """The prior of ``segment``, matched by slug as segments are everywhere ("At Risk" = "at_risk")."""
        if segment is None or not self.segment_priors:
            return self.prior
        wanted = slugify(segment)
        return next((p for name, p in self.segment_priors.items() if slugify(name) == wanted), self.prior)

    @property
    def redemption_limit(self) -> int | None:
        """Redemptions the budget allows, or None for no limit."""
        return None if self.budget is None else self.budget.max_redemptions

    @property
    def impression_limit(self) -> int | None:
        """Impressions the money budget pays for at ``cost`` each, or None for no limit (no money budget,
        or an offer that costs nothing to show)."""
        if self.budget is None or self.budget.total is None or self.cost <= 0:
            return None
        # rounded before the floor: 1100 / 0.55 is 1999.9999999999998 in binary floating point
        return math.floor(round(self.budget.total / self.cost, 9))


class Catalogue(_Strict):
    offers: tuple[Offer, ...]
    contact: ContactPolicy = Field(default_factory=ContactPolicy)

    def __getitem__(self, offer_id: str) -> Offer:
        for offer in self.offers:
            if offer.id == offer_id:
                return offer
        raise KeyError(offer_id)

    def __contains__(self, offer_id: object) -> bool:
        return any(offer.id == offer_id for offer in self.offers)

    @cached_property
    def version(self) -> str:
        # Read on every decision; the catalogue is immutable, so hash it once.
        return hashlib.sha256(self.canonical_bytes()).hexdigest()[:16]

    def canonical_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)

    def to_bytes(self) -> bytes:
        return self.canonical_bytes()

    @classmethod
    def from_bytes(cls, value: bytes) -> Catalogue:
        return parse_catalogue(orjson.loads(value))


def parse_catalogue(data: Any, segments: Collection[str] | None = None) -> Catalogue:
    """Validate a decoded catalogue; every problem found is reported, each naming its offer and field.

    Given ``segments`` (names), every segment an offer names must be one of them, by name or slug;
    ``segment_priors`` may also name :data:`UNKNOWN_SEGMENT`, the segment of a customer without one.
    """
    if not isinstance(data, dict) or not isinstance(data.get("offers"), list) or not data["offers"]:
        raise CatalogueError(["the catalogue must be a mapping with a non-empty list under 'offers'"])
    unknown = set(data) - {"offers", "contact"}
    problems = [f"catalogue: unknown field {name!r}" for name in sorted(unknown)]
    try:
        contact = ContactPolicy.model_validate(data.get("contact", {}))
    except ValidationError as exc:
        problems += _describe("catalogue", "contact", exc)
        contact = ContactPolicy()
    offers: list[Offer] = []
    seen: set[str] = set()
    for position, raw in enumerate(data["offers"]):
        offer_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(offer_id, str):  # a list or number is reported by validation, under its position
            offer_id = None
        label = f"offer {offer_id!r}" if offer_id else f"offer #{position + 1} (no id)"
        if offer_id and offer_id in seen:
            problems.append(f"{label}: id: appears more than once")
        seen.add(offer_id)
        try:
            offers.append(Offer.model_validate(raw))
        except ValidationError as exc:
            problems += _describe(label, "", exc)
        if segments is not None and isinstance(raw, dict):
            problems += _unknown_segments(label, raw, segments)
    if problems:
        raise CatalogueError(problems)
    return Catalogue(offers=tuple(offers), contact=contact)


def load_catalogue(path: str | Path) -> Catalogue:
    """Read and validate the file marketers edit; its segments must be the customer job's RFM segments.

    A published snapshot's catalogue is read with :meth:`Catalogue.from_bytes`, without that check: it
    passed it when published, and a snapshot must stay readable.
    """
    # imported here: the customers package loads scikit-learn (about a second), which reading a published
    # catalogue does not need
    from recsys.customers.rfm import SEGMENTS

    path = Path(path)
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogueError([f"{path}: not valid YAML: {exc}"]) from exc
    return parse_catalogue(data, segments=list(SEGMENTS))


def _unknown_segments(label: str, raw: dict, segments: Collection[str]) -> list[str]:
    """Segments an offer names (read from its raw mapping, so that they are checked even when another
    field of the offer is invalid) that are not among ``segments``."""
    eligibility = raw.get("eligibility") if isinstance(raw.get("eligibility"), dict) else {}
    priors = raw.get("segment_priors")
    named = {"eligibility.segments": (eligibility.get("segments"), list(segments)),
             "segment_priors": (list(priors) if isinstance(priors, dict) else None, [*segments, UNKNOWN_SEGMENT])}
    problems = []
    for field, (given, valid) in named.items():
        by_slug = {slugify(name): name for name in valid}
        for name in given if isinstance(given, list) else []:
            if isinstance(name, str) and slugify(name) not in by_slug:
                problems.append(f"{label}: {field}: {name!r} is not a segment{_closest(name, by_slug)}; "
                                f"valid: {', '.join(valid)} (or their slugs)")
    return problems


def _closest(name: str, by_slug: dict[str, str]) -> str:
    candidates = {**{valid.lower(): valid for valid in by_slug.values()}, **by_slug}
    close = difflib.get_close_matches(name.lower(), list(candidates), n=1)
    return f" (did you mean {candidates[close[0]]!r}?)" if close else ""


def _describe(label: str, base: str, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        field = ".".join(p for p in (base, loc) if p) or "(offer)"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{label}: {field}: {message}")
    return problems


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
