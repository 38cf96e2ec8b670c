"""/v1/processes routes and their request/response models: parse -> one service call -> shape the response.

GET /v1/processes/{id} carries a strong ETag of its body (platform.http.conditional, as every GET); `If-None-Match`
with it answers 304 while nothing changed. The body depends only on the stored process (rate and ETA are computed as
of the last counter change, not the wall clock), so an idle poller really gets 304s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from conveyor.platform.dynamo import NEXT_CURSOR_DOC, decode_cursor, encode_cursor
from conveyor.platform.http.resolver import json_response
from conveyor.platform.http.security import principal, requires
from conveyor.processes import repository, service
from conveyor.processes.domain import MAX_COUNTER_SHARDS, ChildPolicy, ErrorSample, Process, Progress

router = Router()
READ, WRITE = requires("processes:read"), requires("processes:write")
ProcessId = Annotated[str, Path(min_length=1, max_length=64)]
ProcessState = Literal["pending", "running", "paused", "completed", "completed_with_errors", "failed", "cancelled"]


class StartRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "reminders.campaign",
                    "name": "Closed on Friday",
                    "params": {
                        "filter": {"channel": "email"},
                        "subject": "We are closed on Friday",
                        "text": "The clinic is closed on Friday 4 December; we open again on Monday.",
                    },
                }
            ]
        },
    )

    type: str = Field(min_length=1, max_length=100, examples=["reminders.campaign"])
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, max_length=200)
    expected_total: StrictInt | None = Field(default=None, ge=0, description="Items expected, if known: enables ETA.")
    tolerated_failure_count: StrictInt | None = Field(default=None, ge=0)
    tolerated_failure_percent: StrictFloat | None = Field(default=None, ge=0, le=100)
    counter_shards: StrictInt | None = Field(
        default=None, ge=0, le=MAX_COUNTER_SHARDS, description="Spread counters over N items (very busy processes)."
    )


class Counts(BaseModel):
    processed: int
    succeeded: int
    failed: int
    skipped: int


class Batches(BaseModel):
    total: int
    done: int
    fetch_done: bool


class ProgressView(BaseModel):
    percent: float | None = Field(description="Never 100 before the process is finished; null if indeterminate.")
    indeterminate: bool
    rate_per_second: float | None = Field(description="processed / elapsed")
    smoothed_rate_per_second: float | None = Field(description="EWMA (alpha 0.1) over snapshots >= 10 s apart")
    eta_seconds: float | None = Field(description="From `as_of`; null while the total is unknown")
    eta_at: datetime | None
    as_of: datetime | None = Field(description="When the counters last changed")


class ChildrenSummary(BaseModel):
    total: int
    done: int
    failed: int


class ProcessView(BaseModel):
    id: str
    type: str
    name: str
    state: ProcessState
    params: dict[str, Any]
    context: dict[str, Any]
    results: dict[str, Any] | None = None
    parent_id: str | None = None
    child_policy: str | None = None
    expected_total: int | None = None
    counts: Counts
    batches: Batches
    progress: ProgressView
    children: ChildrenSummary
    tolerated_failure_count: int | None = None
    tolerated_failure_percent: float | None = None
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    stalled_at: datetime | None = Field(default=None, description="The last time the liveness sweep found it silent")

    @classmethod
    def of(cls, process: Process, figures: Progress | None = None) -> ProcessView:
        """`figures`: the process's progress (service.progress_of for one process); else as a list shows it."""
        c = process.counters
        p = figures or service.listed_progress(process)
        return cls(
            id=process.id,
            type=process.type,
            name=process.name,
            state=process.state.value,
            params=process.params,
            context=process.context,
            results=process.results,
            parent_id=process.parent_id,
            child_policy=process.child_policy.value if process.child_policy else None,
            expected_total=process.expected_total,
            counts=Counts(processed=c.processed, succeeded=c.succeeded, failed=c.failed, skipped=c.skipped),
            batches=Batches(total=process.batches_total, done=c.batches_done, fetch_done=process.fetch_done),
            progress=ProgressView(
                percent=p.percent,
                indeterminate=p.indeterminate,
                rate_per_second=_round(p.rate_per_second),
                smoothed_rate_per_second=_round(p.smoothed_rate_per_second),
                eta_seconds=_round(p.eta_seconds),
                eta_at=p.eta_at,
                as_of=p.as_of,
            ),
            children=ChildrenSummary(
                total=process.children.total, done=process.children.done, failed=process.children.failed
            ),
            tolerated_failure_count=process.tolerance.count,
            tolerated_failure_percent=process.tolerance.percent,
            error=process.error,
            created_at=process.created_at,
            started_at=process.started_at,
            finished_at=process.finished_at,
            heartbeat_at=process.heartbeat_at,
            stalled_at=process.stalled_at,
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class ProcessPage(BaseModel):
    items: list[ProcessView]
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR_DOC)


class ErrorView(BaseModel):
    record_id: str | None
    message: str
    at: datetime | None

    @classmethod
    def of(cls, sample: ErrorSample) -> ErrorView:
        return cls(record_id=sample.record_id, message=sample.message, at=sample.at)


class ErrorPage(BaseModel):
    items: list[ErrorView] = Field(description="The newest error samples (at most 100)")


class ChildView(BaseModel):
    policy: ChildPolicy
    process: ProcessView


class ChildPage(BaseModel):
    items: list[ChildView]


def _cursor(last: str | None) -> str | None:
    return encode_cursor(id=last) if last else None


def _after(cursor: str | None) -> str | None:
    """The last process id of a page (the platform's one codec: garbage, non-ASCII -> InvalidCursor, a 400)."""
    fields = decode_cursor(cursor, {"id": repository.PREFIX})
    return fields["id"] if fields else None


@router.post(
    "/processes",
    middlewares=[WRITE],
    summary="Start a process",
    responses={
        202: {"description": "Started", "content": {"application/json": {"model": ProcessView}}},
        200: {"description": "Replay of an earlier request with the same Idempotency-Key"},
    },
)
def start_process(
    request: StartRequest,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", min_length=1, max_length=255)] = None,
) -> Response[ProcessView]:
    spec = service.StartSpec(**request.model_dump())
    process, created = service.start(principal(router).tenant_id, spec, idempotency_key)
    return json_response(ProcessView.of(process), 202 if created else 200)


@router.get("/processes", middlewares=[READ], summary="List processes, newest first")
def list_processes(
    state: Annotated[ProcessState | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,  # noqa: A002 - the public parameter name
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ProcessPage:
    items, last = service.list_processes(
        principal(router).tenant_id, state=state, process_type=type, limit=limit, after=_after(cursor)
    )
    return ProcessPage(items=[ProcessView.of(p) for p in items], next_cursor=_cursor(last))


@router.get(
    "/processes/<process_id>",
    middlewares=[READ],
    summary="Get a process: counts, progress, rate, ETA, children (ETag; 304 when unchanged)",
)
def get_process(process_id: ProcessId) -> ProcessView:  # ETag and 304: platform.http.conditional, as every GET
    process = service.require(principal(router).tenant_id, process_id)
    return ProcessView.of(process, service.progress_of(process))


@router.get("/processes/<process_id>/errors", middlewares=[READ], summary="The newest error samples of a process")
def process_errors(process_id: ProcessId) -> ErrorPage:
    return ErrorPage(items=[ErrorView.of(e) for e in service.errors(principal(router).tenant_id, process_id)])


@router.get("/processes/<process_id>/children", middlewares=[READ], summary="A process's child processes")
def process_children(process_id: ProcessId) -> ChildPage:
    found = service.children(principal(router).tenant_id, process_id)
    return ChildPage(items=[ChildView(policy=policy, process=ProcessView.of(child)) for child, policy in found])


@router.post("/processes/<process_id>/pause", middlewares=[WRITE], summary="Pause: batches not started yet wait")
def pause_process(process_id: ProcessId) -> ProcessView:
    return ProcessView.of(service.pause(principal(router).tenant_id, process_id))


@router.post("/processes/<process_id>/resume", middlewares=[WRITE], summary="Resume a paused process")
def resume_process(process_id: ProcessId) -> ProcessView:
    return ProcessView.of(service.resume(principal(router).tenant_id, process_id))


@router.post(
    "/processes/<process_id>/cancel", middlewares=[WRITE], summary="Cancel: no new batch starts; it ends cancelled"
)
def cancel_process(process_id: ProcessId) -> ProcessView:
    return ProcessView.of(service.cancel(principal(router).tenant_id, process_id))
