"""/v1/jobs routes and their request/response shapes (pydantic; they also make the OpenAPI document):
parse -> one service call -> shape the response."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from conveyor.jobs import domain, service
from conveyor.platform.clock import Instant
from conveyor.platform.dynamo import NEXT_CURSOR_DOC
from conveyor.platform.errors import Conflict, Unavailable
from conveyor.platform.http import errors as http_errors
from conveyor.platform.http.security import principal, requires

JobState = Literal["scheduled", "queued", "active", "retrying", "completed", "failed", "cancelled"]
assert set(get_args(JobState)) == set(domain.STATES)  # noqa: S101 - the two lists must not drift

MAX_SCHEDULE_DAYS = 365


class EnqueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100, examples=["email.send"])
    payload: dict[str, Any] = Field(default_factory=dict)
    run_at: Instant | None = Field(default=None, description="Run at (or after) this instant.")
    delay_seconds: StrictInt | None = Field(default=None, ge=0, le=MAX_SCHEDULE_DAYS * 86400)
    max_attempts: StrictInt | None = Field(default=None, ge=1, le=10)

    @model_validator(mode="after")
    def _one_schedule(self) -> EnqueueRequest:
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give run_at or delay_seconds, not both")
        if self.run_at is not None and self.run_at > datetime.now(UTC) + timedelta(days=MAX_SCHEDULE_DAYS):
            raise ValueError(f"run_at can be at most {MAX_SCHEDULE_DAYS} days ahead")
        return self

    def as_new_job(self) -> domain.NewJob:
        return domain.NewJob(self.type, self.payload, self.run_at, self.delay_seconds, self.max_attempts)


class JobError(BaseModel):
    type: str
    message: str


class TimelineEvent(BaseModel):
    state: JobState
    at: datetime
    note: str | None = None


class Job(BaseModel):
    id: str
    type: str
    queue: str
    state: JobState
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    progress: int = Field(ge=0, le=100)
    result: Any = None
    error: JobError | None = None
    run_at: datetime | None = None
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timeline: list[TimelineEvent] = Field(
        default_factory=list,
        description="The job's first and last 20 state changes; `timeline_dropped` counts those between them.",
    )
    timeline_dropped: int = Field(default=0, ge=0, description="State changes left out of `timeline`.")

    @classmethod
    def of(cls, job: domain.Job) -> Job:
        return cls(
            id=job.id,
            type=job.type,
            queue=job.queue,
            state=job.state,  # pydantic validates it as one of JobState
            payload=job.payload,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            progress=job.progress,
            result=job.result,
            error=JobError(type=job.error.type, message=job.error.message) if job.error else None,
            run_at=job.run_at,
            idempotency_key=job.idempotency_key,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            timeline=[TimelineEvent(state=e.state, at=e.at, note=e.note) for e in job.timeline],
            timeline_dropped=job.timeline_dropped,
        )


class JobPage(BaseModel):
    items: list[Job]
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR_DOC)


router = Router()
READ, WRITE = requires("jobs:read"), requires("jobs:write")
JobId = Annotated[str, Path(min_length=1, max_length=64)]
IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", min_length=1, max_length=255)]


def accepted(job: domain.Job, created: bool) -> Response[Job]:
    """202 with the job for a new one, 200 for the replay of an earlier request with the same Idempotency-Key."""
    return Response(status_code=202 if created else 200, content_type=content_types.APPLICATION_JSON, body=Job.of(job))


@router.post(
    "/jobs",
    middlewares=[WRITE],
    summary="Enqueue a job",
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"model": Job}}},
        200: {"description": "Replay of an earlier request with the same Idempotency-Key"},
    },
)
def enqueue(request: EnqueueRequest, idempotency_key: IdempotencyKey = None) -> Response[Job]:
    caller = principal(router)
    return accepted(*service.enqueue(caller.tenant_id, request.as_new_job(), idempotency_key, caller=caller))


class BatchItem(EnqueueRequest):
    """One job of a batch: what POST /v1/jobs takes, and the Idempotency-Key it would have had as a header."""

    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)


class EnqueueBatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"type": "email.send", "payload": {"to": ["ann@example.com"], "template": "welcome"}},
                        {
                            "type": "email.send",
                            "payload": {"to": ["bob@example.com"], "template": "welcome"},
                            "delay_seconds": 60,
                            "idempotency_key": "welcome-bob",
                        },
                    ]
                }
            ]
        },
    )

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=service.MAX_BATCH,
        description="Up to 100 jobs, each what POST /v1/jobs takes (an `EnqueueRequest`) plus an optional "
        "`idempotency_key`. Each is checked on its own: an invalid one is an `invalid` result, never the batch's "
        "failure.",
    )


BatchStatus = Literal["created", "duplicate", "conflict", "invalid", "unavailable"]


class BatchError(BaseModel):
    """The error POST /v1/jobs answers for the item alone (`details` null where it has none)."""

    code: str
    message: str
    details: Any = None


class BatchResult(BaseModel):
    index: int = Field(ge=0, description="The item's position in the request.")
    status: BatchStatus = Field(
        description="`created`: a new job. `duplicate`: an earlier job made with this idempotency_key and the same "
        "job (that job). `conflict`: the key was used with another job, or that request is still in progress. "
        "`invalid`: refused (unknown type, payload, schedule, scope...). `unavailable`: not stored (throttled): "
        "send it again."
    )
    status_code: int = Field(description="What POST /v1/jobs would have answered for this item alone.")
    job: Job | None = None
    error: BatchError | None = Field(default=None, description="As POST /v1/jobs's error for this item alone.")


class BatchResults(BaseModel):
    items: list[BatchResult] = Field(description="One result per item, in the request's order.")


def _parsed(item: dict[str, Any]) -> tuple[BatchItem | None, tuple[int, dict[str, Any]] | None]:
    try:
        return BatchItem.model_validate(item), None
    except ValidationError as exc:
        problems = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        return None, http_errors.described_validation(problems)


def _result(index: int, outcome: domain.Enqueued) -> BatchResult:
    if outcome.error is not None:
        code, error = http_errors.described(outcome.error)
        status: BatchStatus = "invalid"
        if isinstance(outcome.error, Conflict):
            status = "conflict"
        elif isinstance(outcome.error, Unavailable):
            status = "unavailable"
        return BatchResult(index=index, status=status, status_code=code, error=BatchError(**error))
    assert outcome.job is not None  # noqa: S101 - an outcome is a job or an error
    created = outcome.created
    return BatchResult(
        index=index,
        status="created" if created else "duplicate",
        status_code=202 if created else 200,
        job=Job.of(outcome.job),
    )


@router.post(
    "/jobs/batch",
    middlewares=[WRITE],
    summary="Enqueue up to 100 jobs",
    description="Each item is enqueued as POST /v1/jobs would enqueue it alone (its type's scope, payload, "
    "schedule and idempotency rules), and answered in `items`, in order: the answer is 200 whatever each item's "
    "result (read each `status`; 207 Multi-Status is WebDAV's XML, not JSON). 422 only when the batch itself is "
    "malformed (no items, more than 100, not objects), 413 when the body is over 256 KB.",
    openapi_extensions={
        "x-idempotency": "Idempotency: per item. Give an item an `idempotency_key`: a repeat with the same key and "
        "job is a `duplicate` result holding the first job (the same key with another job: `conflict`), whichever "
        "batch or single request used the key first. Items without one are enqueued again by a repeat."
    },
)
def enqueue_batch(request: EnqueueBatchRequest) -> BatchResults:
    caller = principal(router)
    parsed = [_parsed(item) for item in request.items]
    valid = [(item.as_new_job(), item.idempotency_key) for item, _ in parsed if item is not None]
    outcomes = iter(service.enqueue_many(caller.tenant_id, valid, caller=caller))
    results = []
    for index, (_, problem) in enumerate(parsed):
        if problem is not None:
            code, error = problem
            results.append(BatchResult(index=index, status="invalid", status_code=code, error=BatchError(**error)))
        else:
            results.append(_result(index, next(outcomes)))
    return BatchResults(items=results)


@router.get("/jobs", middlewares=[READ], summary="List jobs, newest first")
def list_jobs(
    state: Annotated[JobState | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,  # noqa: A002 - the public parameter name
    queue: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[Instant | None, Query()] = None,
    created_before: Annotated[Instant | None, Query()] = None,
    order: Annotated[Literal["newest", "oldest"], Query()] = "newest",
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    caller = principal(router)
    items, next_cursor = service.list_jobs(
        caller.tenant_id,
        state=state,
        job_type=type,
        queue=queue,
        created_from=created_from,
        created_before=created_before,
        oldest_first=order == "oldest",
        limit=limit,
        cursor=cursor,
        caller=caller,
    )
    return JobPage(items=[Job.of(j) for j in items], next_cursor=next_cursor)


@router.get("/jobs/<job_id>", middlewares=[READ], summary="Get a job")
def get_job(job_id: JobId) -> Job:
    caller = principal(router)
    return Job.of(service.get(caller.tenant_id, job_id, caller=caller))


@router.post("/jobs/<job_id>/cancel", middlewares=[WRITE], summary="Cancel a scheduled, queued or retrying job")
def cancel_job(job_id: JobId) -> Job:
    caller = principal(router)
    return Job.of(service.cancel(caller.tenant_id, job_id, caller=caller))


@router.post("/jobs/<job_id>/retry", middlewares=[WRITE], summary="Retry a failed or cancelled job")
def retry_job(job_id: JobId) -> Job:
    caller = principal(router)
    return Job.of(service.retry(caller.tenant_id, job_id, caller=caller))


@router.post("/jobs/<job_id>/run-now", middlewares=[WRITE], summary="Run a scheduled job now instead of at run_at")
def run_job_now(job_id: JobId) -> Job:
    caller = principal(router)
    return Job.of(service.run_now(caller.tenant_id, job_id, caller=caller))


@router.delete(
    "/jobs/<job_id>",
    middlewares=[WRITE],
    summary="Delete a completed, failed or cancelled job",
    responses={204: {"description": "Deleted"}},
)
def delete_job(job_id: JobId) -> Response[None]:
    caller = principal(router)
    service.delete(caller.tenant_id, job_id, caller=caller)
    return Response(status_code=204)
