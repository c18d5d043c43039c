"""Response bodies, as documented in the OpenAPI schema at /docs."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    name: str | None = Field(None, description="MLflow registered model name")
    version: str | None = Field(None, description="MLflow model version")
    run_id: str | None = Field(None, description="MLflow run that trained it")
    alias: str | None = Field(None, description="Registry alias it was published under")


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    source: str = Field(description="Generator or rule that produced this item: als, popular, repeat_buy, ...")


class RecommendationList(BaseModel):
    customer_id: str | None = Field(None, description="Set on customer recommendations")
    item_id: str | None = Field(None, description="Set on similar items")
    kind: str | None = Field(None, description="Set on popular lists: popular or trending")
    source: str = Field(description="personalised, fallback, similar_items or popular")
    fallback_reason: str | None = Field(None, description="Why the fallback answered, e.g. unknown_customer")
    items: list[RecommendedItem]
    snapshot_id: str = Field(description="Snapshot every item of this answer was read from")
    model: ModelInfo


class Problem(BaseModel):
    detail: str | list


class Health(BaseModel):
    status: str
    snapshot_id: str | None = None
    model: ModelInfo | None = None
    detail: str | None = None
