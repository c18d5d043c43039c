"""Liveness (the process answers) and readiness (store reachable and a snapshot current)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from serving.schemas import Health
from serving.snapshots import NoSnapshotError

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=Health)
async def live() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(request: Request):
    reader = request.app.state.reader
    try:
        reachable = await reader.ping()
    except Exception as exc:  # any backend failure means not ready, never a 500
        return JSONResponse({"status": "unavailable", "detail": f"store unreachable: {exc}"}, status_code=503)
    if not reachable:
        return JSONResponse({"status": "unavailable", "detail": "store unreachable"}, status_code=503)
    try:
        view = await request.app.state.snapshots.current()
    except NoSnapshotError as exc:
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
    return Health(status="ready", snapshot_id=view.snapshot_id, model=view.model)
