"""Personalised offers: a customer's next best offers, outcome events, and an eligibility preview."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from starlette.datastructures import QueryParams

from serving.auth import require_scope
from serving.deps import OffersDep
from serving.responses import FastJSONResponse
from serving.schemas import INVALID_PARAMETER, OfferEventIn, OfferEventOut, OfferList, OfferPreview, Problem
from serving.services.offers import (
    BudgetExhaustedError,
    NoCatalogueError,
    OfferEvent,
    UnknownCustomerError,
    UnknownOfferError,
)
from serving.storefront_query import CUSTOMER_PARAMETER, integer_param, invalid, path_id

router = APIRouter(prefix="/v1", tags=["offers"])
#: The per-page-view route, included with its scope check only when API keys are configured
#: (``serving.auth.scope_dependencies``), as the storefront's recommendation routes are.
decision_router = APIRouter(prefix="/v1", tags=["offers"])
DECISION_SCOPE = "offers:read"
MAX_OFFERS = 20
#: an event is a few hundred bytes: a larger body is a 413 once this much is read, not parsed into memory
#: (set on this route, the only one taking a body, so the page-view routes carry no limit layer)
MAX_EVENT_BYTES = 64 * 1024
K_PARAMETER = {"name": "k", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 1, "maximum": MAX_OFFERS},
               "description": "Most offers to show (the contact cap may allow fewer); default 1"}

OfferId = Annotated[str, Path(min_length=1, max_length=64, description="Offer id from the catalogue")]
NO_CATALOGUE = {503: {"model": Problem, "description": "No snapshot, or the snapshot carries no catalogue"}}


@decision_router.get("/customers/{customer_id:anyid}/offers", response_model=OfferList,
            openapi_extra={"parameters": [CUSTOMER_PARAMETER, K_PARAMETER]},
            responses={404: {"model": Problem, "description": "Customer has no profile"}, **INVALID_PARAMETER,
                       **NO_CATALOGUE},
            summary="Next best offers for a customer",
            description="Eligible offers ranked by P(redeem) x value - cost, P(redeem) drawn from the Beta "
                        "posterior of the offer in the customer's segment. Each offer returned is an "
                        "impression: it uses the customer's contact cap and the offer's repeat cap atomically. "
                        "Offers whose caps or budget are used up are not returned (listed in `capped`).")
async def customer_offers(request: Request):
    customer_id = path_id(request, "customer_id")
    k = _offer_k(request.query_params)
    try:
        body = await request.app.state.offers.for_customer(customer_id, k)
    except UnknownCustomerError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except NoCatalogueError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return FastJSONResponse(body)


@router.post("/offers/{offer_id}/events", response_model=OfferEventOut, max_body_size=MAX_EVENT_BYTES,
             dependencies=[require_scope("offers:write")],
             responses={404: {"model": Problem, "description": "Offer not in the current catalogue, or customer "
                                                     "without a profile (nothing is counted)"},
                        409: {"model": Problem, "description": "Redemption refused: budget.max_redemptions is used up"},
                        **NO_CATALOGUE},
             summary="Record an impression, redemption or dismissal",
             description="Idempotent by `event_id`: a replay answers 200 with `duplicate: true` and counts "
                         "nothing. A redemption uses one unit of the offer's budget.max_redemptions atomically (409 "
                         "when none is left); budget.total is spent by the impressions GET offers serves. Outcomes "
                         "update the offer's Beta posterior for the customer's segment.")
async def offer_event(offer_id: OfferId, event: OfferEventIn, service: OffersDep):
    try:
        body = await service.record_event(offer_id, OfferEvent(event.event_id, event.type, event.customer_id))
    except (UnknownOfferError, UnknownCustomerError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except BudgetExhaustedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except NoCatalogueError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return FastJSONResponse(body)


@router.get("/offers/preview", response_model=OfferPreview, dependencies=[require_scope("offers:read")],
            responses=NO_CATALOGUE, summary="Eligible customers per offer on the current snapshot",
            description="Counts every profile of the current snapshot once per snapshot, and again when an "
                        "offer's validity window opens or closes (the first call on a large snapshot takes "
                        "seconds), with each offer's budget use.")
async def offers_preview(service: OffersDep):
    try:
        body = await service.preview()
    except NoCatalogueError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return FastJSONResponse(body)


def _offer_k(query: QueryParams) -> int:
    k = integer_param(query, "k")
    if k is None:
        return 1
    if k > MAX_OFFERS:
        raise invalid("k", f"k must be at most {MAX_OFFERS}", k, "less_than_equal")
    return k
