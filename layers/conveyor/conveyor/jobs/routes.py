"""/v1/jobs routes: parse -> one service call -> shape the response."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

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
    caller = principal(router)
    job, created = service.enqueue(caller.tenant_id, request, idempotency_key, caller=caller)
    return _json(job, 202 if created else 200)


@router.get("/jobs", middlewares=[READ], summary="List jobs, newest first")
def list_jobs(
    state: Annotated[JobState | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,  # noqa: A002 - the public parameter name
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    caller = principal(router)
    return service.list_jobs(caller.tenant_id, state=state, job_type=type, limit=limit, cursor=cursor, caller=caller)


@router.get("/jobs/<job_id>", middlewares=[READ], summary="Get a job")
def get_job(job_id: JobId) -> Job:
    caller = principal(router)
    return service.get(caller.tenant_id, job_id, caller=caller)


@router.post("/jobs/<job_id>/cancel", middlewares=[WRITE], summary="Cancel a scheduled, queued or retrying job")
def cancel_job(job_id: JobId) -> Job:
    caller = principal(router)
    return service.cancel(caller.tenant_id, job_id, caller=caller)


@router.post("/jobs/<job_id>/retry", middlewares=[WRITE], summary="Retry a failed or cancelled job")
def retry_job(job_id: JobId) -> Job:
    caller = principal(router)
    return service.retry(caller.tenant_id, job_id, caller=caller)
