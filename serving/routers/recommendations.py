"""Storefront endpoints: a customer's recommendations, similar items, popular and trending lists."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from recsys.rules import RuleSet
from serving.deps import KQuery, resolve_k
from serving.responses import FastJSONResponse
from serving.schemas import Problem, RecommendationList
from serving.services.recommendations import UnknownItemError

SCOPE = "recommendations:read"
router = APIRouter(prefix="/v1", tags=["recommendations"])

CustomerId = Annotated[str, Path(min_length=1, max_length=128, description="External customer id")]
ItemId = Annotated[str, Path(min_length=1, max_length=128, description="External item id")]


@router.get("/customers/{customer_id}/recommendations", response_model=RecommendationList,
            summary="Top-k items for a customer",
            description="Personalised list from the current snapshot; an unknown customer gets the popular "
                        "fallback (source=fallback). Each item names its generator.")
async def customer_recommendations(
    request: Request,
    customer_id: CustomerId,
    k: KQuery = None,
    placement: Annotated[str | None, Query(description="Named rule set from RECSYS_SERVING_PLACEMENTS")] = None,
    exclude_purchased: Annotated[bool | None, Query(description="Leave out items the customer bought")] = None,
    include_items: Annotated[list[str] | None, Query(description="Only these items (repeat the parameter)")] = None,
    exclude_items: Annotated[list[str] | None, Query(description="Never these items")] = None,
    categories: Annotated[list[str] | None, Query(description="Only items of these categories")] = None,
    exclude_categories: Annotated[list[str] | None, Query(description="Never items of these categories")] = None,
    max_per_category: Annotated[int | None, Query(ge=1, description="At most this many items per category")] = None,
):
    refinements = {"exclude_purchased": exclude_purchased, "include_items": include_items,
                   "exclude_items": exclude_items, "categories": categories,
                   "exclude_categories": exclude_categories, "max_per_category": max_per_category}
    rules = None
    if placement is not None or any(value is not None for value in refinements.values()):
        rules = _rules(request, placement).override(**refinements)
    answer = await request.app.state.recommendations.for_customer(customer_id, resolve_k(request, k), rules)
    return FastJSONResponse(answer.to_body(customer_id=customer_id))


def _rules(request: Request, placement: str | None) -> RuleSet:
    settings = request.app.state.settings
    try:
        return settings.placement_rules(placement)
    except KeyError:
        valid = ", ".join(sorted(settings.placements)) or "none configured"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["query", "placement"], "msg": f"unknown placement {placement!r}; valid: {valid}",
                              "input": placement, "type": "value_error"}]) from None


ListKind = Annotated[Literal["popular", "trending"], Query(description="popular or trending")]


@router.get("/items/popular", response_model=RecommendationList, summary="Popular or trending items")
async def popular_items(request: Request, k: KQuery = None, kind: ListKind = "popular"):
    answer = await request.app.state.recommendations.popular(resolve_k(request, k), kind)
    return FastJSONResponse(answer.to_body())


@router.get("/items/{item_id}/similar", response_model=RecommendationList,
            responses={404: {"model": Problem, "description": "Item not in the current catalogue"}},
            summary="Items similar to an item (co-purchase similarity)")
async def similar_items(request: Request, item_id: ItemId, k: KQuery = None):
    try:
        answer = await request.app.state.recommendations.similar(item_id, resolve_k(request, k))
    except UnknownItemError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FastJSONResponse(answer.to_body(item_id=item_id))
