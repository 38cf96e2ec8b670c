"""Sweeps the scheduler runs each minute: release due delayed jobs; recover the jobs the watch finds astray
(queued ones no worker took, active ones whose worker stopped)."""

from __future__ import annotations

from datetime import datetime

from conveyor.jobs import registry, repository
from conveyor.jobs.domain import STALL_GRACE_SECONDS, Job, JobState
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


def recover_lost_jobs(now: datetime, deadline: Deadline) -> int:
    """Jobs on their way through a worker that went astray, found through the watch (conveyor.jobs.repository):
    a queued one no worker took DISPATCH_GRACE_SECONDS after it was due (its dispatch failed past the stream's
    retries, or its message was lost) is sent again; an active one whose lease ended STALL_GRACE_SECONDS ago with
    nothing coming back (its message went to the DLQ or was deleted) is sent again or failed. Each action is a
    conditional write on what was read, so overlapping sweeps act once and a worker that got there first wins."""
    recovered = 0
    for tenant_id, job_id, due_at in deadline.bounded(repository.watched_keys(now)):
        job = repository.get(tenant_id, job_id, consistent=True)
        if job is not None and job.state == JobState.QUEUED:
            recovered += _redispatch(job, due_at)
        elif job is not None and job.state == JobState.ACTIVE and job.lease_until is not None:
            if job.lease_until + STALL_GRACE_SECONDS > now.timestamp():
                repository.watch_lease(job, due_at)  # still running: look again after its lease
            else:
                recovered += _recover_stalled(job, job.lease_until)
    return recovered


def _redispatch(job: Job, due_at: int) -> bool:
    """A queued job no worker took: sent again through the outbox, once per check. A job merely waiting in a long
    queue gets a duplicate message, which the worker's claim drops."""
    resent = repository.redispatch(job, due_at)
    if resent is None:
        return False  # claimed or cancelled meanwhile, or another sweep got there first
    count("JobsRedispatched", resent.type)
    logger.warning(
        "queued job not taken by a worker; sent again",
        extra={
            "job_id": resent.id,
            "job_type": resent.type,
            "tenant_id": resent.tenant_id,
            "times": resent.redispatches,
        },
    )
    return True


def _recover_stalled(stalled: Job, lease_until: int) -> bool:
    """An active job whose lease ended long ago: sent again (the stalled attempt stays spent) or failed."""
    job = repository.recover_stalled(stalled.tenant_id, stalled.id, lease_until)
    if job is None:
        return False  # re-claimed or finished meanwhile
    count("JobsStalled", job.type)
    tags = {"job_id": job.id, "job_type": job.type, "tenant_id": job.tenant_id, "attempt": job.attempts}
    if job.state == JobState.FAILED:
        count("JobsFailed", job.type)
        report_job_failure("Stalled", "the worker stopped during the job's last attempt", tags=tags, final=True)
        _tell_process(job)
    logger.warning("stalled job recovered", extra={**tags, "state": job.state})
    return True


def _tell_process(job: Job) -> None:
    """A process's job that failed for good here is reported to its process, as the worker would."""
    port = registry.process_port() if job.process_id else None
    if port is None or job.process_id is None:
        return
    ref = registry.JobRef(job.tenant_id, job.id, job.type, job.queue, job.payload, job.process_id, job.batch_key)
    port.failed(ref, "Stalled", "the worker stopped (timeout or crash) during the last attempt")
