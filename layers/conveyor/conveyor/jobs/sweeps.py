"""Sweeps the scheduler runs each minute: release due delayed jobs; send again queued jobs no worker took;
recover stalled ones."""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.jobs import repository
from conveyor.jobs.domain import JobState
from conveyor.platform.clock import Deadline
from conveyor.platform.observability import count, logger, report_job_failure


def release_due_jobs(now: datetime, deadline: Deadline) -> int:
    """Release every due scheduled job once, until the deadline (the rest waits in the index for the next run).
    Safe to run concurrently: each release is a conditional write."""
    released = skipped = 0
    for tenant_id, job_id, due_at in deadline.bounded(repository.due_keys(now)):
        if repository.release(tenant_id, job_id, due_at):
            released += 1
        else:
            skipped += 1  # another sweep got there first, or it was cancelled meanwhile
    if released or skipped:
        logger.info("released due jobs", extra={"released": released, "skipped": skipped})
    return released


# A worker's lease is its remaining invocation time + a margin. A worker that crashed or timed out leaves its
# message invisible for the queue's VisibilityTimeout (360 s in template.yaml); when it comes back, the worker
# re-claims the job itself. The sweep waits longer than that, so it only acts on jobs whose message is gone
# (moved to the DLQ, deleted) and never races the normal path.
STALL_GRACE_SECONDS = 600


def recover_stalled_jobs(now: datetime, deadline: Deadline) -> int:
    """Active jobs whose lease ended long ago: sent again (the stalled attempt stays spent) or failed."""
    recovered = 0
    stalled = repository.stalled_keys(now - timedelta(seconds=STALL_GRACE_SECONDS))
    for tenant_id, job_id, lease_until in deadline.bounded(stalled):
        job = repository.recover_stalled(tenant_id, job_id, lease_until)
        if job is None:
            continue  # re-claimed or finished meanwhile
        recovered += 1
        count("JobsStalled", job.type)
        tags = {"job_id": job.id, "job_type": job.type, "tenant_id": job.tenant_id, "attempt": job.attempts}
        if job.state == JobState.FAILED:
            count("JobsFailed", job.type)
            report_job_failure("Stalled", "the worker stopped during the job's last attempt", tags=tags, final=True)
        logger.warning("stalled job recovered", extra={**tags, "state": job.state})
    return recovered


def redispatch_undelivered_jobs(now: datetime, deadline: Deadline) -> int:
    """Queued jobs no worker claimed DISPATCH_GRACE_SECONDS after they were due to be sent (their dispatch failed
    past the stream's retries, or the message was lost): sent again through the outbox, once per check. A job
    merely waiting in a long queue gets a duplicate message, which the worker's claim drops."""
    resent = 0
    for tenant_id, job_id, due_at in deadline.bounded(repository.undispatched_keys(now)):
        job = repository.redispatch(tenant_id, job_id, due_at)
        if job is None:
            continue  # claimed or cancelled meanwhile, or another sweep got there first
        resent += 1
        count("JobsRedispatched", job.type)
        logger.warning(
            "queued job not taken by a worker; sent again",
            extra={"job_id": job.id, "job_type": job.type, "tenant_id": job.tenant_id, "times": job.redispatches},
        )
    return resent
