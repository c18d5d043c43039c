"""Dependencies shared by the routers: the services opened in the lifespan.

The storefront routes read ``request.app.state`` directly instead (see ``serving.storefront_query``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.services.customers import CustomerService
from serving.services.experiments import ExperimentService
from serving.services.offers import OfferService


async def get_customers(request: Request) -> CustomerService:
    return request.app.state.customers


async def get_offers(request: Request) -> OfferService:
    return request.app.state.offers


async def get_experiments(request: Request) -> ExperimentService:
    return request.app.state.experiments


CustomersDep = Annotated[CustomerService, Depends(get_customers)]
OffersDep = Annotated[OfferService, Depends(get_offers)]
ExperimentsDep = Annotated[ExperimentService, Depends(get_experiments)]
