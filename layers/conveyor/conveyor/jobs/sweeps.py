"""Sweeps the scheduler runs each minute: release due delayed jobs; recover stalled ones."""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.jobs import repository
from conveyor.jobs.domain import JobState
from conveyor.platform.observability import count, logger, report_job_failure


def release_due_jobs(now: datetime) -> int:
    """Release every due scheduled job once. Safe to run concurrently: each release is a conditional write."""
    released = skipped = 0
    for tenant_id, job_id, due_at in repository.due_keys(now):
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


def recover_stalled_jobs(now: datetime) -> int:
    """Active jobs whose lease ended long ago: sent again (the stalled attempt stays spent) or failed."""
    recovered = 0
    for tenant_id, job_id, lease_until in repository.stalled_keys(now - timedelta(seconds=STALL_GRACE_SECONDS)):
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
