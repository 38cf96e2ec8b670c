"""/v1/queues and the bulk job operations (scope `admin`; acting on every tenant also needs `platform`)."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from conveyor.admin import service
from conveyor.admin.models import (
    BulkResult,
    DeadLetterPage,
    PauseResult,
    QueuesOverview,
    RedriveRequest,
    RedriveResult,
    RetryFailedRequest,
)
from conveyor.platform.clock import Instant
from conveyor.platform.http.security import principal, requires

router = Router()
ADMIN = requires("admin")
QueueName = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/queues", middlewares=[ADMIN], summary="Queues: depths, dead letters, your job counts, paused")
def list_queues() -> Response[QueuesOverview]:
    overview, served = service.overview(principal(router))
    return Response(200, content_types.APPLICATION_JSON, overview, headers=served.headers())


@router.get(
    "/queues/<name>/dead-letters",
    middlewares=[ADMIN],
    summary="Peek at a queue's dead letters (yours; nothing is consumed)",
)
def dead_letters(
    name: QueueName,
    limit: Annotated[int, Query(ge=1, le=service.PEEK_LIMIT)] = 10,
    all_tenants: Annotated[bool, Query()] = False,
) -> DeadLetterPage:
    return service.dead_letters(principal(router), name, limit=limit, all_tenants=all_tenants)


@router.post("/queues/<name>/redrive", middlewares=[ADMIN], summary="Move dead letters back to their queue")
def redrive(name: QueueName, request: RedriveRequest | None = None) -> RedriveResult:
    return service.redrive(principal(router), name, request or RedriveRequest())


@router.post("/queues/<name>/pause", middlewares=[ADMIN], summary="Stop the worker taking jobs from a queue")
def pause(name: QueueName) -> PauseResult:
    return service.set_paused(principal(router), name, True)


@router.post("/queues/<name>/resume", middlewares=[ADMIN], summary="Let the worker take jobs from a queue again")
def resume(name: QueueName) -> PauseResult:
    return service.set_paused(principal(router), name, False)


@router.post("/jobs/retry-failed", middlewares=[ADMIN], summary="Retry your failed jobs (bounded; use the cursor)")
def retry_failed(request: RetryFailedRequest | None = None) -> BulkResult:
    return service.retry_failed(principal(router).tenant_id, request or RetryFailedRequest())


@router.delete("/jobs", middlewares=[ADMIN], summary="Delete your finished jobs (bounded; use the cursor)")
def delete_jobs(
    state: Annotated[Literal["completed", "failed", "cancelled"], Query()],
    before: Annotated[Instant, Query(description="Jobs that finished before this instant.")],
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,  # noqa: A002 - the public parameter name
) -> BulkResult:
    return service.delete_finished(
        principal(router).tenant_id, state=state, before=before, limit=limit, cursor=cursor, queue=queue, job_type=type
    )
