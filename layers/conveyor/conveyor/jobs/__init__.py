"""Jobs: the engine every capability runs on (enqueue, state, dispatch to SQS, workers, delayed release).

This is the public API other capabilities use: define a job type with `@job_type`, enqueue with `enqueue`,
read with `get`. Nothing outside conveyor.jobs reads the jobs table or builds its conditions.

Modules: domain (the job, its states and transitions) · repository (storage, every transition conditional) ·
service (use cases) · api (/v1/jobs) · registry (job types) · worker (SQS -> handler -> outcome) ·
dispatch (the outbox: stream -> SQS) · sweeps (delayed release, stalled recovery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.jobs.domain import FINISHED, STATES, BulkOutcome, Job, JobBrief, JobError, JobState, NewJob, Page
from conveyor.jobs.registry import JobContext, RetryPolicy, Scopes, job_type
from conveyor.jobs.service import (
    after,
    briefs,
    cancel,
    delete,
    delete_finished,
    derived_job_id,
    enqueue,
    find,
    get,
    list_jobs,
    next_cursor,
    retry,
    retry_failed,
    run_now,
)

if TYPE_CHECKING:
    from conveyor.jobs.api import Job as JobResponse

__all__ = [
    "BulkOutcome",
    "FINISHED",
    "STATES",
    "Job",
    "JobBrief",
    "JobContext",
    "JobError",
    "JobResponse",
    "JobState",
    "NewJob",
    "Page",
    "RetryPolicy",
    "Scopes",
    "after",
    "briefs",
    "cancel",
    "delete",
    "delete_finished",
    "derived_job_id",
    "enqueue",
    "find",
    "get",
    "job_type",
    "list_jobs",
    "next_cursor",
    "retry",
    "retry_failed",
    "run_now",
]


def __getattr__(name: str) -> Any:
    # The API's response shape, for other capabilities' routes that answer with a job. Loaded on first use:
    # the worker and the scheduler never import the HTTP layer.
    if name == "JobResponse":
        from conveyor.jobs.api import Job

        return Job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
