"""Storefront endpoints: a customer's recommendations, similar items, basket complements, popular and
trending lists."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from serving.responses import FastJSONResponse
from serving.schemas import INVALID_PARAMETER, NO_SNAPSHOT, BasketComplements, Problem, RecommendationList
from serving.services.recommendations import UnknownItemError
from serving.storefront_query import (
    CUSTOMER_PARAMETER,
    K_PARAMETER,
    MAX_ID_LENGTH,
    RECOMMENDATION_PARAMETERS,
    invalid,
    k_of,
    path_id,
    rules_of,
)

SCOPE = "recommendations:read"
router = APIRouter(prefix="/v1", tags=["recommendations"])

ItemId = Annotated[str, Path(min_length=1, max_length=128, description="External item id")]
MAX_BASKET_ITEMS = 100
BASKET_PARAMETERS = [
    {"name": "items", "in": "query", "required": True, "description": f"The basket's item ids (repeat the "
     f"parameter; 1 to {MAX_BASKET_ITEMS})", "schema": {"type": "array", "items": {"type": "string"}}},
    {"name": "customer_id", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "The shopper, for exclude_purchased"},
    *RECOMMENDATION_PARAMETERS,
]


@router.get("/customers/{customer_id:anyid}/recommendations", response_model=RecommendationList,
            responses={**INVALID_PARAMETER, **NO_SNAPSHOT}, summary="Top-k items for a customer",
            openapi_extra={"parameters": [CUSTOMER_PARAMETER, *RECOMMENDATION_PARAMETERS]},
            description="Personalised list from the current snapshot; an unknown customer gets the popular "
                        "fallback (source=fallback, fallback_reason=unknown_customer), and so does a customer "
                        "whose own items the rules all removed (fallback_reason=no_personal_items). Business "
                        "rules filter it, and answers short of k are filled from the fallback chain. Each item "
                        "names its generator.")
async def customer_recommendations(request: Request):
    customer_id = path_id(request, "customer_id")
    settings = request.app.state.settings
    query = request.query_params
    answer = await request.app.state.recommendations.for_customer(customer_id, k_of(query, settings),
                                                                  rules_of(query, settings))
    return FastJSONResponse(answer.to_body(customer_id=customer_id))


@router.get("/baskets/complements", response_model=BasketComplements, openapi_extra={"parameters": BASKET_PARAMETERS},
            responses={**INVALID_PARAMETER, **NO_SNAPSHOT},
            summary="Items that go with a basket",
            description="Items bought together with the basket's items (co-purchase similarity summed over the "
                        "basket), never the basket's own; unknown items are named in `unknown_items` and skipped. "
                        "Business rules as for a customer's recommendations; short answers are filled from the "
                        "fallback chain (`source: fallback` with `fallback_reason: no_known_items` when no basket "
                        "item is known, `no_complements` when the rules left no complement).")
async def basket_complements(request: Request):
    query = request.query_params
    basket = query.getlist("items")
    if not 1 <= len(basket) <= MAX_BASKET_ITEMS:
        raise invalid("items", f"give 1 to {MAX_BASKET_ITEMS} basket items (repeat the parameter)", basket,
                      "value_error")
    too_long = [item for item in basket if not item.strip() or len(item) > MAX_ID_LENGTH]
    if too_long:
        raise invalid("items", f"item ids must be 1 to {MAX_ID_LENGTH} characters, not blank", too_long[0],
                      "value_error")
    customer_id = query.get("customer_id")
    if customer_id is not None and not 0 < len(customer_id.strip()) <= MAX_ID_LENGTH:
        raise invalid("customer_id", f"customer_id must be 1 to {MAX_ID_LENGTH} characters", customer_id,
                      "value_error")
    settings = request.app.state.settings
    answer = await request.app.state.recommendations.complements(basket, k_of(query, settings),
                                                                 rules_of(query, settings), customer_id)
    return FastJSONResponse(answer.to_body())


ListKind = Annotated[Literal["popular", "trending"], Query(description="popular or trending")]


@router.get("/items/popular", response_model=RecommendationList, summary="Popular or trending items",
            responses={**INVALID_PARAMETER, **NO_SNAPSHOT},
            openapi_extra={"parameters": [K_PARAMETER]})
async def popular_items(request: Request, kind: ListKind = "popular"):
    answer = await request.app.state.recommendations.popular(k_of(request.query_params, request.app.state.settings),
                                                             kind)
    return FastJSONResponse(answer.to_body())


@router.get("/items/{item_id:anyid}/similar", response_model=RecommendationList,
            responses={404: {"model": Problem, "description": "Item not in the current catalogue"},
                       **INVALID_PARAMETER, **NO_SNAPSHOT},
            summary="Items similar to an item (co-purchase similarity)", openapi_extra={"parameters": [K_PARAMETER]})
async def similar_items(request: Request, item_id: ItemId):
    try:
        answer = await request.app.state.recommendations.similar(item_id, k_of(request.query_params,
                                                                               request.app.state.settings))
    except UnknownItemError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FastJSONResponse(answer.to_body(item_id=item_id))
