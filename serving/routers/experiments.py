"""Online experiments: the configured designs, and a unit's arm with its exposure logged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from serving.auth import require_scope
from serving.deps import ExperimentsDep
from serving.responses import FastJSONResponse
from serving.schemas import Assignment, ExperimentList, Problem
from serving.services.experiments import UnknownExperimentError

router = APIRouter(prefix="/v1/experiments", tags=["experiments"],
                   dependencies=[require_scope("experiments:read")])

ExperimentId = Annotated[str, Path(min_length=1, max_length=64, description="Experiment id of the designs file")]
UnitId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"\S",
                             description="The unit assigned: a customer or session id")]


@router.get("", response_model=ExperimentList, summary="Configured experiments",
            description="Each experiment's arms (the first is the control) with their weights, and its traffic.")
async def list_experiments(service: ExperimentsDep):
    return FastJSONResponse(service.listing())


@router.get("/{experiment_id}/assignments/{unit_id:anyid}", response_model=Assignment,
            responses={404: {"model": Problem, "description": "Experiment not configured"}},
            summary="A unit's arm",
            description="Deterministic: the same unit always gets the same arm, on every worker. Outside the "
                        "experiment's traffic, `arm` is null. Unless `expose=false`, the unit's first exposure is "
                        "appended to the `experiment_exposures` log of the limits store (exported by "
                        "`recsys ab exposures`).")
async def assignment(experiment_id: ExperimentId, unit_id: UnitId, service: ExperimentsDep,
                     expose: Annotated[bool, Query(description="Log this as the unit's exposure")] = True):
    try:
        body = await service.assignment(experiment_id, unit_id, expose=expose)
    except UnknownExperimentError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FastJSONResponse(body)
