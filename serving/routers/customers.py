"""Customer intelligence about one customer: segment, RFM, cluster, churn risk and lifetime value."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from serving.auth import require_scope
from serving.deps import CustomersDep
from serving.responses import FastJSONResponse
from serving.schemas import INVALID_PARAMETER, NO_SNAPSHOT, CustomerProfileOut, Problem
from serving.services.customers import NoCustomerDataError, UnknownCustomerError, profile_body

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[require_scope("customers:read")])

CustomerId = Annotated[str, Path(min_length=1, max_length=128, description="External customer id")]


@router.get("/{customer_id:anyid}/profile", response_model=CustomerProfileOut,
            responses={404: {"model": Problem, "description": "No profile for this customer in the snapshot"},
                       **INVALID_PARAMETER, **NO_SNAPSHOT},
            summary="A customer's segment, RFM scores, cluster, churn risk with reasons and lifetime value",
            description="Read from the current snapshot as of its training cutoff; null means unknown.")
async def customer_profile(customer_id: CustomerId, service: CustomersDep):
    try:
        profile, index = await service.profile(customer_id)
    except (UnknownCustomerError, NoCustomerDataError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FastJSONResponse(profile_body(profile, index))
