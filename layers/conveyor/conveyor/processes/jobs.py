"""The engine side of processes: the ProcessPort the jobs worker calls (conveyor.jobs.registry), the
`ctx.process` handle a process's job gets, and the `processes.unpark` job type.

A process's job is admitted only while its process runs (a pending one is begun by its first job); while
paused it is parked (recorded on the process, re-enqueued on resume, no attempt spent); once the process
has finished it is skipped. Admitted jobs keep the process's heartbeat, at most every HEARTBEAT_SECONDS per
worker and process, and each heartbeat may add a rate snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from conveyor.jobs.registry import Continue, JobContext, JobRef, RetryPolicy, Scopes, job_type
from conveyor.platform.clock import utcnow
from conveyor.processes import repository, service
from conveyor.processes.domain import ChildPolicy, ErrorSample, Outcome, Process, State

HEARTBEAT_SECONDS = 10.0
_last_beat: dict[str, float] = {}
_admitted: dict[str, Process] = {}


def _beat(process: Process, *, force: bool = False) -> None:
    now = time.monotonic()
    if not force and now - _last_beat.get(process.id, 0.0) < HEARTBEAT_SECONDS:
        return
    _last_beat[process.id] = now
    fresh = process if process.snapshots else repository.get(process.tenant_id, process.id, consistent=True)
    if fresh is not None and fresh.state in (State.RUNNING, State.PENDING):
        repository.heartbeat(fresh, utcnow(), fresh.counters.processed)


class ProcessHandle:
    """`ctx.process`: what a process's job may do to its process."""

    def __init__(self, job: JobRef, process: Process) -> None:
        self._job, self._process = job, process

    @property
    def id(self) -> str:
        return self._process.id

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._process.params)

    @property
    def context(self) -> dict[str, Any]:
        return dict(self._process.context)

    @property
    def batch_key(self) -> str | None:
        return self._job.batch_key

    def update_context(self, **values: Any) -> dict[str, Any]:
        merged = repository.update_context(self._process, values) or {}
        self._process.context = merged
        return dict(merged)

    def set_results(self, results: dict[str, Any]) -> None:
        repository.set_results(self._process, service._bounded("results", results))

    def add_batches(
        self, payloads: Sequence[dict[str, Any]], *, key: str, sizes: Sequence[int | None] | None = None
    ) -> int:
        """Declare and enqueue batches `key.0`, `key.1`, ... once (a retried call adds nothing)."""
        added = service.add_batches(self._process, payloads, key=key, sizes=sizes)
        _beat(self._process)
        return added

    def fetch_done(self, expected_total: int | None = None) -> None:
        service.fetch_done(self._process, expected_total)

    def record(self, *, succeeded: int = 0, failed: int = 0, skipped: int = 0, errors: Iterable[Any] = ()) -> bool:
        """This batch's outcome, committed once. False when it was committed before (nothing changed)."""
        if self._job.batch_key is None:
            raise ValueError("only a batch's job records an outcome; the driver declares batches")
        outcome = Outcome(succeeded, failed, skipped, tuple(_sample(e) for e in errors))
        committed = service.record(self._process, self._job.batch_key, outcome, job_id=self._job.job_id)
        _beat(self._process)
        return committed

    def start_child(
        self, process_type: str, params: dict[str, Any], *, key: str, policy: str = ChildPolicy.IGNORE, **spec: Any
    ) -> str:
        child = service.start_child(
            self._process,
            service.StartSpec(type=process_type, params=params, **spec),
            key=key,
            policy=ChildPolicy(policy),
        )
        return child.id

    def stopping(self) -> bool:
        """The process no longer runs (paused, cancelled, failed): a long handler should checkpoint and stop."""
        current = repository.get(self._process.tenant_id, self._process.id, consistent=True, live=False)
        return current is None or current.state is not State.RUNNING


def _sample(error: Any) -> ErrorSample:
    if isinstance(error, ErrorSample):
        return error
    if isinstance(error, dict):
        return ErrorSample(error.get("record_id"), str(error.get("message", "")))
    if isinstance(error, tuple) and len(error) == 2:
        return ErrorSample(error[0], str(error[1]))
    return ErrorSample(None, str(error))


class Port:
    """The ProcessPort named in conveyor/capabilities.py."""

    def admit(self, job: JobRef) -> str | None:
        process = repository.get(job.tenant_id, job.process_id, consistent=True)
        if process is None:
            return "its process no longer exists"
        if process.state is State.PENDING and repository.begin(process):
            process.state = State.RUNNING
            _beat(process, force=True)
            process = repository.get(job.tenant_id, job.process_id, consistent=True) or process
        if process.state is State.PAUSED:
            repository.park(process, job.job_id, job.type, job.payload, job.batch_key)
            return "parked: its process is paused (enqueued again on resume)"
        if process.state is not State.RUNNING:
            return f"skipped: its process is {process.state.value}"
        _beat(process)
        _admitted[job.job_id] = process
        return None

    def handle(self, job: JobRef) -> ProcessHandle:
        process = _admitted.pop(job.job_id, None) or service.require(job.tenant_id, job.process_id, consistent=True)
        return ProcessHandle(job, process)

    def failed(self, job: JobRef, error_type: str, message: str) -> None:
        _admitted.pop(job.job_id, None)
        process = repository.get(job.tenant_id, job.process_id, consistent=True, live=False)
        if process is None:
            return
        if job.batch_key is not None:
            service.batch_failed(process, job.batch_key, job.job_id, error_type, message)
        elif job.type == service.require_type(process.type).driver:
            service.driver_failed(process, error_type, message)


port = Port()


# --- processes' own job types --------------------------------------------------------------------------------------
class UnparkPayload(BaseModel):
    process_id: str = Field(min_length=1, max_length=64)


@job_type(
    "processes.unpark",
    queue="sync",
    payload=UnparkPayload,
    retry=RetryPolicy(max_attempts=5),
    scopes=Scopes(read="processes:read", write="processes:write"),
)
def unpark(payload: UnparkPayload, job: JobContext) -> dict[str, Any]:
    """Re-enqueue the jobs a paused process parked (idempotent: each parked job maps to one fresh job)."""
    if job.remaining_seconds() < 1:
        raise Continue(None)
    return {"unparked": service.unpark(job.tenant_id, payload.process_id)}
