"""The liveness sweep (scheduler, every minute): no process stays silent and stuck.

A pending, running process whose heartbeat is older than STALL_AFTER_SECONDS (10 min) is stamped stalled (once
per silence), counted (`ProcessesStalled`) and reported to Sentry, then recovered:
  - pending, or the fetch not done: its driver job is enqueued afresh (drivers resume from the process context
    and declare batches idempotently, so a second driver changes no count);
  - every declared batch without a ledger item is enqueued again as a fresh job (the ledger makes a late
    duplicate of the lost one harmless);
  - finished children not yet settled on it are settled; then the completion gate looks again.
Paused processes are expected to be silent and are left alone; finished ones leave the index.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.jobs import registry
from conveyor.jobs import service as jobs
from conveyor.jobs.domain import NewJob
from conveyor.platform.clock import Deadline
from conveyor.platform.observability import count, logger, report_job_failure
from conveyor.processes import repository, service
from conveyor.processes.domain import STALL_AFTER_SECONDS, Process, State


def sweep_stalled_processes(now: datetime, deadline: Deadline) -> int:
    """Bounded by the scheduler's time share (`deadline`): silent processes not reached wait for the next run."""
    stalled = 0
    silent = repository.silent_since(now - timedelta(seconds=STALL_AFTER_SECONDS))
    for tenant_id, process_id in deadline.bounded(silent):
        process = repository.get(tenant_id, process_id, consistent=True)
        if process is None:
            continue
        if process.state.finished:
            repository.retire_live(process)
            continue
        if process.state is State.PAUSED or not repository.mark_stalled(process, process.heartbeat_at, now):
            continue
        stalled += 1
        requeued = recover(process)
        tags = {"process_id": process.id, "process_type": process.type, "tenant_id": tenant_id}
        count("ProcessesStalled", process.type)
        report_job_failure(
            "ProcessStalled",
            f"process {process.id} sent no heartbeat for {STALL_AFTER_SECONDS // 60} minutes; "
            f"{requeued} of its jobs were enqueued again",
            tags=tags,
            final=False,
        )
        logger.warning("stalled process recovered", extra={**tags, "requeued": requeued})
    return stalled


def recover(process: Process) -> int:
    """Enqueue again what a silent process is missing; returns how many jobs were enqueued."""
    requeued = 0
    attempt = f"r{int(process.stalled_at.timestamp()) if process.stalled_at else 0}"
    if process.state is State.PENDING or not process.fetch_done:
        kind = service.require_type(process.type)
        jobs.enqueue(
            process.tenant_id,
            NewJob(type=kind.driver, payload={"process_id": process.id}),
            f"{process.id}:driver:{attempt}",
            process_id=process.id,
        )
        requeued += 1
    done = repository.ledger_keys(process)
    queue = None
    for batch_key, job_type, payload, job_id in repository.declared_batches(process):
        if batch_key in done:
            continue
        if queue is None:
            queue = registry.require(job_type).queue
        job, _ = jobs.enqueue(
            process.tenant_id,
            NewJob(type=job_type, payload=payload),
            f"{process.id}:{batch_key}:{attempt}",
            queue=queue,
            process_id=process.id,
            batch_key=batch_key,
        )
        repository.set_batch_job(process.id, batch_key, job.id, previous=job_id)
        requeued += 1
    for child_id, _, settled in repository.child_links(process):
        if not settled:
            child = repository.get(process.tenant_id, child_id, consistent=True, live=False)
            if child is not None and child.state.finished:
                service.settle_on_parent(child)
    service.settle(process.tenant_id, process.id)
    return requeued
