"""Storefront endpoints: a customer's recommendations, similar items, popular and trending lists."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from serving.responses import FastJSONResponse
from serving.schemas import Problem, RecommendationList
from serving.services.recommendations import UnknownItemError
from serving.storefront_query import (
    CUSTOMER_PARAMETER,
    K_PARAMETER,
    RECOMMENDATION_PARAMETERS,
    k_of,
    path_id,
    rules_of,
)

SCOPE = "recommendations:read"
router = APIRouter(prefix="/v1", tags=["recommendations"])

ItemId = Annotated[str, Path(min_length=1, max_length=128, description="External item id")]


@router.get("/customers/{customer_id}/recommendations", response_model=RecommendationList,
            summary="Top-k items for a customer",
            openapi_extra={"parameters": [CUSTOMER_PARAMETER, *RECOMMENDATION_PARAMETERS]},
            description="Personalised list from the current snapshot; an unknown customer gets the popular "
                        "fallback (source=fallback). Business rules filter it, and answers short of k are filled "
                        "from the fallback chain. Each item names its generator.")
async def customer_recommendations(request: Request):
    customer_id = path_id(request, "customer_id")
    settings = request.app.state.settings
    query = request.query_params
    answer = await request.app.state.recommendations.for_customer(customer_id, k_of(query, settings),
                                                                  rules_of(query, settings))
    return FastJSONResponse(answer.to_body(customer_id=customer_id))


ListKind = Annotated[Literal["popular", "trending"], Query(description="popular or trending")]


@router.get("/items/popular", response_model=RecommendationList, summary="Popular or trending items",
            openapi_extra={"parameters": [K_PARAMETER]})
async def popular_items(request: Request, kind: ListKind = "popular"):
    answer = await request.app.state.recommendations.popular(k_of(request.query_params, request.app.state.settings),
                                                             kind)
    return FastJSONResponse(answer.to_body())


@router.get("/items/{item_id}/similar", response_model=RecommendationList,
            responses={404: {"model": Problem, "description": "Item not in the current catalogue"}},
            summary="Items similar to an item (co-purchase similarity)", openapi_extra={"parameters": [K_PARAMETER]})
async def similar_items(request: Request, item_id: ItemId):
    try:
        answer = await request.app.state.recommendations.similar(item_id, k_of(request.query_params,
                                                                               request.app.state.settings))
    except UnknownItemError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FastJSONResponse(answer.to_body(item_id=item_id))
