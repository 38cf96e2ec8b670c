"""Delayed jobs: move scheduled jobs whose time has come to their queue (the scheduler runs this each minute)."""

from __future__ import annotations

from datetime import datetime

from conveyor.jobs import store
from conveyor.observability import logger


def release_due_jobs(now: datetime) -> int:
    """Release every due scheduled job once. Safe to run concurrently: each release is a conditional write."""
    released = skipped = 0
    for tenant_id, job_id, due_at in store.due_keys(now):
        if store.release(tenant_id, job_id, due_at):
            released += 1
        else:
            skipped += 1  # another sweep got there first, or it was cancelled meanwhile
    if released or skipped:
        logger.info("released due jobs", extra={"released": released, "skipped": skipped})
    return released
