"""Storefront endpoints: a customer's recommendations, similar items, popular and trending lists."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from serving.auth import require_scope
from serving.deps import KDep, RecommendationsDep
from serving.responses import FastJSONResponse
from serving.schemas import Problem, RecommendationList
from serving.services.recommendations import UnknownItemError

router = APIRouter(prefix="/v1", tags=["recommendations"], dependencies=[require_scope("recommendations:read")])

CustomerId = Annotated[str, Path(min_length=1, max_length=128, description="External customer id")]
ItemId = Annotated[str, Path(min_length=1, max_length=128, description="External item id")]


@router.get("/customers/{customer_id}/recommendations", response_model=RecommendationList,
            summary="Top-k items for a customer",
            description="Personalised list from the current snapshot; an unknown customer gets the popular "
                        "fallback (source=fallback). Each item names its generator.")
async def customer_recommendations(customer_id: CustomerId, k: KDep, service: RecommendationsDep):
    answer = await service.for_customer(customer_id, k)
    return FastJSONResponse(answer.to_body(customer_id=customer_id))


ListKind = Annotated[Literal["popular", "trending"], Query(description="popular or trending")]


@router.get("/items/popular", response_model=RecommendationList, summary="Popular or trending items")
async def popular_items(k: KDep, service: RecommendationsDep, kind: ListKind = "popular"):
    answer = await service.popular(k, kind)
    return FastJSONResponse(answer.to_body())


@router.get("/items/{item_id}/similar", response_model=RecommendationList,
            responses={404: {"model": Problem, "description": "Item not in the current catalogue"}},
            summary="Items similar to an item (co-purchase similarity)")
async def similar_items(item_id: ItemId, k: KDep, service: RecommendationsDep):
    try:
        answer = await service.similar(item_id, k)
    except UnknownItemError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FastJSONResponse(answer.to_body(item_id=item_id))
