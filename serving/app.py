"""The FastAPI application: ``create_app()`` wires settings, the store reader and the routers."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.responses import Response

from feature_store import StoreUnavailableError, open_async_reader, open_limits
from recsys.offers import CatalogueError, load_catalogue
from serving.auth import scope_dependencies
from serving.responses import utf8_safe
from serving.routers import customers, experiments, health, offers, recommendations, segments
from serving.services.customers import CustomerService
from serving.services.experiments import DesignError, ExperimentService, load_designs
from serving.services.offers import OfferService
from serving.services.recommendations import RecommendationService
from serving.settings import ENV_PREFIX, ServingSettings, describe, get_settings
from serving.snapshots import NoSnapshotError, SnapshotCache, SnapshotStoreUnreachableError

API_DESCRIPTION = """Recommendations and customer intelligence from the current published snapshot.

Every answer names its source, the snapshot it was read from and the model version behind it.
When API keys are configured, send one in the `X-API-Key` header."""


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # a bad designs file stops the start before anything is opened
        designs = load_designs(settings.experiments_path) if settings.experiments_path else {}
        reader = open_async_reader(settings.store_url, prefix=settings.store_prefix)
        snapshots = SnapshotCache(reader, settings.snapshot_refresh_seconds)
        app.state.reader = reader
        app.state.snapshots = snapshots
        app.state.recommendations = RecommendationService(reader, snapshots, settings.fallback_chain)
        app.state.customers = CustomerService(reader, snapshots)
        limits = open_limits(settings.resolved_limits_url(), prefix=settings.limits_prefix or settings.store_prefix)
        fallback = load_catalogue(settings.offer_catalogue_path) if settings.offer_catalogue_path else None
        app.state.offers = OfferService(reader, snapshots, limits, fallback_catalogue=fallback,
                                        seed=settings.offers_seed, event_log_max=settings.offers_event_log_max,
                                        profiles_in_memory=settings.offers_profiles_in_memory,
                                        outcomes_refresh_seconds=settings.offers_outcomes_refresh_seconds)
        app.state.experiments = ExperimentService(designs, limits, exposure_log_max=settings.exposure_log_max)
        await app.state.offers.warm_up()
        await _settle_heap(snapshots)
        try:
            yield
        finally:
            await snapshots.close()
            await app.state.offers.close()
            await reader.close()

    app = FastAPI(title="recsys-service", version="0.1.0", description=API_DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings

    @app.exception_handler(NoSnapshotError)
    async def no_snapshot(_: Request, exc: NoSnapshotError) -> JSONResponse:
        # an unreachable store is worth a retry soon, as any other outage answer says
        outage = isinstance(exc, SnapshotStoreUnreachableError)
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"} if outage else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 echoes each rejected input, and one holding a lone surrogate could not be
        # encoded, so the client got a 500 instead
        return JSONResponse({"detail": utf8_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.exception_handler(StoreUnavailableError)
    async def store_unavailable(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": f"the online store is unavailable; retry shortly ({exc})"}, status_code=503,
                            headers={"Retry-After": "1"})

    # Routes are matched in order: the per-page-view ones first.
    app.include_router(recommendations.router,
                       dependencies=scope_dependencies(recommendations.SCOPE, settings))
    app.include_router(offers.decision_router, dependencies=scope_dependencies(offers.DECISION_SCOPE, settings))
    app.include_router(customers.router)
    app.include_router(segments.router)
    app.include_router(offers.router)
    app.include_router(experiments.router)
    app.include_router(health.router)
    _document_max_k(app, settings.max_k)
    return app


def _document_max_k(app: FastAPI, max_k: int) -> None:
    """Give every ``k`` parameter without a bound of its own the configured ``max_k`` as its maximum in
    the OpenAPI document (the parameters are declared once, before any setting is read)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for operation in (op for path in schema["paths"].values() for op in path.values()):
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "k" and parameter["in"] == "query" \
                            and "maximum" not in parameter["schema"]:
                        parameter["schema"] = {**parameter["schema"], "maximum": max_k}
        return app.openapi_schema

    app.openapi = openapi


async def _settle_heap(snapshots: SnapshotCache) -> None:
    """Load the current snapshot, then move everything alive at start-up out of the garbage collector's
    reach. Left in, the framework's and libraries' objects are rescanned by every full collection,
    which under load runs every few seconds and stalls every request in flight for tens of ms."""
    with contextlib.suppress(NoSnapshotError):
        await snapshots.current()
    gc.collect()
    gc.freeze()


def setup_problems() -> str | None:
    """What would stop the server at start, as one message (``None`` when nothing would): invalid
    ``RECSYS_SERVING_*`` settings, one line per variable, or a fallback catalogue or experiments file that
    does not load. ``recsys serve`` asks before starting uvicorn, whose start-up failure is a traceback."""
    try:
        settings = ServingSettings()
    except ValidationError as exc:
        return describe(exc)
    for variable, path, load in (("OFFER_CATALOGUE_PATH", settings.offer_catalogue_path, load_catalogue),
                                 ("EXPERIMENTS_PATH", settings.experiments_path, load_designs)):
        try:
            if path:
                load(path)
        except OSError as exc:
            return f"{ENV_PREFIX}{variable}: {path}: {exc.strerror}"
        except (CatalogueError, DesignError) as exc:
            return str(exc)
    return None


def create_bare_app() -> FastAPI:
    """A constant-body endpoint on the same server settings: the yardstick of the serving benchmark."""
    app = FastAPI()
    body = b'{"status":"ok"}'

    @app.get("/bare")
    async def bare():
        return Response(body, media_type="application/json")

    return app
