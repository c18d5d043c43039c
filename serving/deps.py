"""Dependencies shared by the routers: the settings and services opened in the lifespan, and k."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status

from serving.services.customers import CustomerService
from serving.services.offers import OfferService
from serving.services.recommendations import RecommendationService
from serving.settings import ServingSettings


async def get_app_settings(request: Request) -> ServingSettings:
    return request.app.state.settings


async def get_recommendations(request: Request) -> RecommendationService:
    return request.app.state.recommendations


async def get_offers(request: Request) -> OfferService:
    return request.app.state.offers


K_QUERY = Query(ge=1, description="How many items: 1 to max_k (100 unless configured); default default_k (10)")


def resolve_k(request: Request, k: int | None) -> int:
    """``k`` or the default, bounded by ``max_k``; a plain call rather than a dependency on hot paths,
    where FastAPI's per-dependency solving costs more than the whole Redis read."""
    settings: ServingSettings = request.app.state.settings
    if k is None:
        return settings.default_k
    if k > settings.max_k:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            [{"loc": ["query", "k"], "msg": f"k must be at most {settings.max_k}", "input": k,
                              "type": "less_than_equal"}])
    return k


async def get_k(request: Request, k: Annotated[int | None, K_QUERY] = None) -> int:
    return resolve_k(request, k)


KQuery = Annotated[int | None, K_QUERY]
SettingsDep = Annotated[ServingSettings, Depends(get_app_settings)]
RecommendationsDep = Annotated[RecommendationService, Depends(get_recommendations)]
KDep = Annotated[int, Depends(get_k)]


def get_customers(request: Request) -> CustomerService:
    return request.app.state.customers


CustomersDep = Annotated[CustomerService, Depends(get_customers)]
OffersDep = Annotated[OfferService, Depends(get_offers)]
