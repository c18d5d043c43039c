"""Segments: definitions and sizes, members as cursor pages (JSON) or as one streamed CSV export.

A ``{segment}`` in a path is the segment's name, URL-encoded (``Can%27t%20Lose%20Them``), or its slug
(``cant-lose-them``: lower case, apostrophes dropped, other symbols as '-'), or ``all`` for every
customer, segment after segment in the order of ``GET /v1/segments``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse

from serving.auth import require_scope
from serving.deps import CustomersDep
from serving.responses import FastJSONResponse
from serving.schemas import NO_SNAPSHOT, Problem, SegmentList, SegmentMembers
from serving.services.customers import (
    Filters,
    InvalidCursorError,
    NoCustomerDataError,
    SnapshotGoneError,
    UnknownSegmentError,
    segments_body,
)

router = APIRouter(prefix="/v1/segments", tags=["segments"], dependencies=[require_scope("segments:read")])

MAX_LIMIT = 1000

Segment = Annotated[str, Path(min_length=1, max_length=200,
                              description="Segment name (URL-encoded), its slug, or 'all'")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Members per page, 1 to {MAX_LIMIT}")]
Cursor = Annotated[str | None, Query(max_length=1000, description="next_cursor of the previous page")]
Probability = Query(ge=0, le=1, allow_inf_nan=False)
Amount = Query(allow_inf_nan=False)
MinChurn = Annotated[float | None, Probability]
MaxChurn = Annotated[float | None, Probability]
MinClv = Annotated[float | None, Amount]
MaxClv = Annotated[float | None, Amount]

ERRORS = {404: {"model": Problem, "description": "Unknown segment (the answer lists the valid ones)"},
          410: {"model": Problem, "description": "The cursor's snapshot has expired"},
          422: {"model": Problem, "description": "Invalid range or cursor (the answer names the field)"},
          **NO_SNAPSHOT}


def filters_of(min_churn: float | None, max_churn: float | None, min_clv: float | None,
               max_clv: float | None) -> Filters:
    for low_name, low, high_name, high in (("min_churn", min_churn, "max_churn", max_churn),
                                           ("min_clv", min_clv, "max_clv", max_clv)):
        if low is not None and high is not None and low > high:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [
                {"loc": ["query", low_name], "msg": f"{low_name} ({low}) is above {high_name} ({high})",
                 "input": low, "type": "range"}])
    return Filters(min_churn, max_churn, min_clv, max_clv)


@contextmanager
def http_errors() -> Iterator[None]:
    try:
        yield
    except (UnknownSegmentError, NoCustomerDataError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except SnapshotGoneError as exc:
        raise HTTPException(status.HTTP_410_GONE, str(exc)) from exc
    except InvalidCursorError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [
            {"loc": ["query", "cursor"], "msg": str(exc), "type": "cursor"}]) from exc


@router.get("", response_model=SegmentList, summary="Segment definitions, sizes and revenue shares",
            responses={404: {"model": Problem, "description": "The snapshot holds no customer intelligence"},
                       **NO_SNAPSHOT})
async def list_segments(service: CustomersDep):
    with http_errors():
        index = await service.current_index()
    return FastJSONResponse(segments_body(index))


@router.get("/{segment}/customers", response_model=SegmentMembers, responses=ERRORS,
            summary="A segment's customers, a page at a time, optionally filtered by churn risk and CLV",
            description="Members in a fixed order; pass next_cursor back as cursor until it is null. The "
                        "cursor pins the snapshot of the first page. Bounds are inclusive; a customer whose "
                        "value is unknown never matches a bound on it. A page may hold fewer than limit "
                        "members (at most 50 stored pages are scanned per request) before the end.")
async def segment_customers(segment: Segment, service: CustomersDep, limit: Limit = 100, cursor: Cursor = None,
                            min_churn: MinChurn = None, max_churn: MaxChurn = None, min_clv: MinClv = None,
                            max_clv: MaxClv = None):
    filters = filters_of(min_churn, max_churn, min_clv, max_clv)
    with http_errors():
        page = await service.members(segment, limit, cursor, filters)
    return FastJSONResponse({"segment": page.segment, "items": page.items, "next_cursor": page.next_cursor,
                             "snapshot_id": page.index.snapshot_id})


@router.get("/{segment}/export.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "The segment's customers as CSV"}, **ERRORS},
            summary="Every customer of a segment as a streamed CSV, with the same filters",
            description="A header row, then one row per customer with every profile column; churn reasons "
                        "are flattened into reason_<i>_feature, reason_<i>_value, reason_<i>_contribution. "
                        "Read from the current snapshot, named in the X-Snapshot-Id header.")
async def export_segment(segment: Segment, service: CustomersDep, min_churn: MinChurn = None,
                         max_churn: MaxChurn = None, min_clv: MinClv = None, max_clv: MaxClv = None):
    filters = filters_of(min_churn, max_churn, min_clv, max_clv)
    with http_errors():
        index = await service.current_index()
        walk = index.resolve(segment)
    filename = "all" if segment == "all" else walk[0]["slug"]
    return StreamingResponse(service.export_csv(index, walk, filters), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{filename}.csv"',
                                      "X-Snapshot-Id": index.snapshot_id})
