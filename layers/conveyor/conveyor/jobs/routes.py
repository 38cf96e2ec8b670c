"""/v1/jobs routes: parse -> one service call -> shape the response."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import AwareDatetime

from conveyor.jobs import service
from conveyor.jobs.models import EnqueueRequest, Job, JobPage, JobState
from conveyor.platform.http.security import principal, requires

router = Router()
READ, WRITE = requires("jobs:read"), requires("jobs:write")
JobId = Annotated[str, Path(min_length=1, max_length=64)]


def _json(job: Job, status: int) -> Response[Job]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=job)


@router.post(
    "/jobs",
    middlewares=[WRITE],
    summary="Enqueue a job",
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"model": Job}}},
        200: {"description": "Replay of an earlier request with the same Idempotency-Key"},
    },
)
def enqueue(
    request: EnqueueRequest,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", min_length=1, max_length=255)] = None,
) -> Response[Job]:
    job, created = service.enqueue(principal(router).tenant_id, request, idempotency_key)
    return _json(job, 202 if created else 200)


@router.get("/jobs", middlewares=[READ], summary="List jobs, newest first")
def list_jobs(
    state: Annotated[JobState | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,  # noqa: A002 - the public parameter name
    queue: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Annotated[AwareDatetime | None, Query()] = None,
    created_before: Annotated[AwareDatetime | None, Query()] = None,
    order: Annotated[Literal["newest", "oldest"], Query()] = "newest",
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    return service.list_jobs(
        principal(router).tenant_id,
        state=state,
        job_type=type,
        queue=queue,
        created_from=created_from,
        created_before=created_before,
        oldest_first=order == "oldest",
        limit=limit,
        cursor=cursor,
    )


@router.get("/jobs/<job_id>", middlewares=[READ], summary="Get a job")
def get_job(job_id: JobId) -> Job:
    return service.get(principal(router).tenant_id, job_id)


@router.post("/jobs/<job_id>/cancel", middlewares=[WRITE], summary="Cancel a scheduled, queued or retrying job")
def cancel_job(job_id: JobId) -> Job:
    return service.cancel(principal(router).tenant_id, job_id)


@router.post("/jobs/<job_id>/retry", middlewares=[WRITE], summary="Retry a failed or cancelled job")
def retry_job(job_id: JobId) -> Job:
    return service.retry(principal(router).tenant_id, job_id)


@router.post("/jobs/<job_id>/run-now", middlewares=[WRITE], summary="Run a scheduled job now instead of at run_at")
def run_job_now(job_id: JobId) -> Job:
    return service.run_now(principal(router).tenant_id, job_id)


@router.delete("/jobs/<job_id>", middlewares=[WRITE], summary="Delete a completed, failed or cancelled job")
def delete_job(job_id: JobId) -> Response[None]:
    service.delete(principal(router).tenant_id, job_id)
    return Response(status_code=204)
