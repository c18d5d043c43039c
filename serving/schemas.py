"""Response bodies, as documented in the OpenAPI schema at /docs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    name: str | None = Field(None, description="MLflow registered model name")
    version: str | None = Field(None, description="MLflow model version")
    run_id: str | None = Field(None, description="MLflow run that trained it")
    alias: str | None = Field(None, description="Registry alias it was published under")


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    source: str = Field(description="Generator that produced this item: ranker/<generator> (ranker/repeat_buy, "
                                    "ranker/ease_binary, ...) in personal lists, item_knn, popular or trending")


class RecommendationList(BaseModel):
    customer_id: str | None = Field(None, description="Set on customer recommendations")
    item_id: str | None = Field(None, description="Set on similar items")
    kind: str | None = Field(None, description="Set on popular lists: popular or trending")
    source: str = Field(description="personalised, fallback, similar_items, basket_complements or popular")
    fallback_reason: str | None = Field(None, description="Why the fallback answered: unknown_customer, "
                                        "no_personal_items, no_similar_items, no_known_items, no_complements or "
                                        "store_unavailable")
    items: list[RecommendedItem]
    snapshot_id: str = Field(description="Snapshot every item of this answer was read from")
    model: ModelInfo
    rules: list[str] = Field(description="Business rules applied")


class BasketComplements(RecommendationList):
    basket: list[str] = Field(description="The basket's items found in the catalogue (never answered)")
    unknown_items: list[str] = Field(description="Basket items not in the current catalogue, skipped")


class Problem(BaseModel):
    detail: str | list


#: Documented answers shared by many routes (OpenAPI ``responses``).
INVALID_PARAMETER = {422: {"model": Problem, "description": "A parameter is invalid; each entry's `loc` names it"}}
NO_SNAPSHOT = {503: {"model": Problem, "description": "No snapshot has been published, or the store cannot be "
                                                      "reached and none is held yet (with Retry-After)"}}


class Health(BaseModel):
    status: str
    snapshot_id: str | None = None
    model: ModelInfo | None = None
    detail: str | None = None


class ChurnReason(BaseModel):
    feature: str
    value: float | str | None = None
    contribution: float = Field(description="How much this feature raised (+) or lowered (-) the churn score")


class RfmScores(BaseModel):
    recency_score: int = Field(description="1 (long ago) to 5 (recent)")
    frequency_score: int
    monetary_score: int
    recency_days: float | None = Field(None, description="Days from the last purchase to the training cutoff")
    frequency: int | None = Field(None, description="Distinct orders before the cutoff")
    monetary: float | None = Field(None, description="Spend before the cutoff net of returns (floored at 0), the "
                                   "amount the monetary score ranks")


class ClusterRef(BaseModel):
    id: int
    name: str | None = None


class Churn(BaseModel):
    probability: float | None = Field(None, description="P(no purchase in the churn window); null when unknown")
    reasons: list[ChurnReason] = Field(description="Top contributions to this customer's churn score")


class CustomerProfileOut(BaseModel):
    customer_id: str
    segment: str
    rfm: RfmScores
    cluster: ClusterRef | None = None
    churn: Churn
    p_alive: float | None = Field(None, description="BG/NBD probability that the customer is still active")
    expected_purchases: float | None = Field(None, description="Expected purchases over the model's horizon")
    clv: float | None = Field(None, description="Discounted customer lifetime value; null when the fit failed")
    country: str | None = None
    snapshot_id: str
    model: ModelInfo
    intelligence: dict = Field(description="What the customer models reported when published (e.g. clv_status)")


class SegmentOut(BaseModel):
    model_config = {"extra": "allow"}

    name: str
    slug: str = Field(description="Accepted in paths in place of the name, e.g. cant-lose-them")
    definition: str | dict | None = None
    size: int
    revenue_share: float | None = None


class SegmentList(BaseModel):
    segments: list[SegmentOut]
    clusters: list[dict]
    profiles: int
    snapshot_id: str
    model: ModelInfo
    intelligence: dict


class SegmentMember(BaseModel):
    model_config = {"extra": "allow"}

    customer_id: str
    segment: str
    churn_probability: float | None = None
    clv: float | None = None
    churn_reasons: list[ChurnReason]


class SegmentMembers(BaseModel):
    segment: str = Field(description="The segment's name (or 'all')")
    items: list[SegmentMember]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null after the last member. "
                                                "A page may hold fewer than limit items before the end.")
    snapshot_id: str = Field(description="Every page of a listing comes from this snapshot")


class OfferPosterior(BaseModel):
    alpha: float
    beta: float


class RankedOffer(BaseModel):
    rank: int
    offer_id: str
    name: str
    type: str = Field(description="percentage_discount, fixed_amount, free_shipping, bundle or loyalty_points")
    segment: str
    p_redeem: float = Field(description="P(redeem) the ranking used: a Thompson draw from the posterior")
    p_mean: float = Field(description="Posterior mean of P(redeem) for this offer in this segment")
    posterior: OfferPosterior
    value: float
    cost: float
    expected_value: float = Field(description="p_redeem x value - cost")
    reasons: list[str] = Field(description="The eligibility rules that held for this customer")
    recommended_item: str | None = Field(None, description="Bundles: the customer's top recommendation")


class OfferList(BaseModel):
    customer_id: str
    segment: str
    policy: str
    offers: list[RankedOffer]
    capped: list[str] = Field(description="Eligible offers skipped because a contact, repeat or budget cap is used up")
    eligible: int = Field(description="How many offers the customer was eligible for")
    snapshot_id: str
    catalogue_version: str


class OfferEventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=128, description="Unique id; a replay is answered, not counted")
    type: Literal["impression", "redemption", "dismissal"]
    customer_id: str = Field(min_length=1, max_length=128)


class OfferEventOut(BaseModel):
    event_id: str
    offer_id: str
    type: str
    duplicate: bool = Field(description="True when this event id was already recorded (nothing counted again)")
    segment: str | None = None


class OfferPreviewRow(BaseModel):
    offer_id: str
    name: str
    type: str
    eligible_customers: int
    redemption_limit: int | None = Field(description="budget.max_redemptions, or null")
    redemptions_used: int
    impression_limit: int | None = Field(description="Impressions budget.total pays for at the offer's cost, or null")
    budget_impressions_used: int = Field(description="Impressions charged to budget.total so far")


class OfferPreview(BaseModel):
    snapshot_id: str
    catalogue_version: str
    customers: int
    offers: list[OfferPreviewRow]


class ExperimentDesignOut(BaseModel):
    experiment_id: str
    control: str
    arms: dict[str, float] = Field(description="Arm -> relative weight, the control first")
    traffic: float = Field(description="Share of units enrolled")


class ExperimentList(BaseModel):
    experiments: list[ExperimentDesignOut]


class Assignment(BaseModel):
    experiment_id: str
    unit_id: str
    arm: str | None = Field(description="The unit's arm; null outside the experiment's traffic")
    enrolled: bool
    control: bool | None = Field(description="Whether the arm is the control; null when not enrolled")
    first_exposure: bool = Field(description="True when this call logged the unit's first exposure")
    exposure_logged: bool | None = Field(description="Whether the unit's exposure is on record: false when the "
                                         "limits store could not be reached (the arm still holds; call again to "
                                         "log it), null when nothing was to be logged (not enrolled, or "
                                         "expose=false)")
