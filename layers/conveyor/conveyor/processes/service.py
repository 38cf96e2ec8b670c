"""Process use cases: start, read, pause/resume/cancel, and the fan-in (batch outcomes, completion, children).

Every function takes the caller's tenant; nothing crosses tenants. Batches run as jobs of the jobs engine; this
module enqueues them through the jobs capability's public service, never by touching its table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from conveyor.jobs import registry as job_registry
from conveyor.jobs import service as jobs
from conveyor.jobs.domain import NewJob
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import Conflict, InvalidInput, InvalidState, NotFound
from conveyor.platform.ids import new_id
from conveyor.platform.observability import count, logger, report_job_failure
from conveyor.processes import repository
from conveyor.processes.domain import (
    MAX_COUNTER_SHARDS,
    ChildPolicy,
    ErrorSample,
    Outcome,
    Process,
    Progress,
    State,
    Tolerance,
    progress,
)

MAX_JSON_BYTES = 4096  # params, context and results each: the record stays small (it takes every commit)


# --- process types ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessType:
    """A kind of process: its parameters, the job that drives it (fetches and declares batches) and the job type
    its batches run as. Both job types are ordinary @job_type handlers of the module that declares this."""

    name: str
    params: type[BaseModel]
    driver: str
    batch: str
    counter_shards: int = 0
    tolerance: Tolerance = Tolerance()


_TYPES: dict[str, ProcessType] = {}


def process_type(
    name: str,
    *,
    params: type[BaseModel],
    driver: str,
    batch: str,
    counter_shards: int = 0,
    tolerance: Tolerance | None = None,
) -> ProcessType:
    kind = ProcessType(name, params, driver, batch, counter_shards, tolerance or Tolerance())
    _TYPES[name] = kind
    return kind


def types() -> dict[str, ProcessType]:
    job_registry.names()  # process types are declared by job type modules: load them
    return dict(_TYPES)


def require_type(name: str) -> ProcessType:
    found = types().get(name)
    if found is None:
        raise InvalidInput(
            f"unknown process type {name!r}",
            fields=[{"loc": ["type"], "msg": f"must be one of: {', '.join(sorted(_TYPES))}"}],
        )
    return found


def _bounded(name: str, value: dict[str, Any] | None) -> dict[str, Any]:
    text = json.dumps(value or {}, separators=(",", ":"))
    if len(text.encode()) > MAX_JSON_BYTES:
        raise InvalidInput(
            f"{name} is {len(text.encode())} bytes; at most {MAX_JSON_BYTES}",
            fields=[{"loc": [name], "msg": f"at most {MAX_JSON_BYTES} bytes of JSON"}],
        )
    return value or {}


# --- start -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartSpec:
    type: str
    params: dict[str, Any]
    name: str | None = None
    expected_total: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percent: float | None = None
    counter_shards: int | None = None


def _new_process(tenant_id: str, spec: StartSpec, *, parent: Process | None = None) -> tuple[Process, ProcessType]:
    kind = require_type(spec.type)
    try:
        params = kind.params.model_validate(spec.params).model_dump(mode="json")
    except ValidationError as exc:
        fields = [
            {"loc": ["params", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput(f"invalid params for process type {kind.name!r}", fields=fields) from None
    tolerance = kind.tolerance
    if spec.tolerated_failure_count is not None or spec.tolerated_failure_percent is not None:
        tolerance = Tolerance(spec.tolerated_failure_count, spec.tolerated_failure_percent)
    shards = kind.counter_shards if spec.counter_shards is None else spec.counter_shards
    now = utcnow()
    process = Process(
        id=new_id("prc"),
        tenant_id=tenant_id,
        type=kind.name,
        name=spec.name or kind.name,
        state=State.PENDING,
        params=_bounded("params", params),
        expected_total=spec.expected_total,
        counter_shards=max(0, min(MAX_COUNTER_SHARDS, shards)),
        tolerance=tolerance,
        parent_id=parent.id if parent else None,
        created_at=now,
        updated_at=now,
    )
    return process, kind


def start(tenant_id: str, spec: StartSpec, idempotency_key: str | None = None) -> tuple[Process, bool]:
    """Create a pending process and enqueue its driver job. (process, created); a repeated Idempotency-Key
    returns the first process."""
    process, kind = _new_process(tenant_id, spec)
    claim = None
    if idempotency_key is not None:
        key = repository.idempotency_key(idempotency_key)
        fingerprint = hashlib.sha256(json.dumps(spec.__dict__, sort_keys=True, default=str).encode()).hexdigest()
        existing = _replay(tenant_id, key, fingerprint)
        if existing is not None:
            return existing, False
        claim = (key, fingerprint, idempotency_key)
    if not repository.insert(process, idempotency=claim):
        existing = _replay(tenant_id, claim[0], claim[1]) if claim else None
        if existing is None:
            raise Conflict("a request with this Idempotency-Key is in progress; retry shortly")
        return existing, False
    enqueue_driver(process, kind)
    count("ProcessesStarted", process.type)
    return process, True


def enqueue_driver(process: Process, kind: ProcessType | None = None) -> None:
    """The process's driver job; idempotent (the same key always names the same job)."""
    kind = kind or require_type(process.type)
    jobs.enqueue(
        process.tenant_id,
        NewJob(type=kind.driver, payload={"process_id": process.id}),
        f"{process.id}:driver",
        process_id=process.id,
    )


def _replay(tenant_id: str, key: str, fingerprint: str) -> Process | None:
    found = repository.find_idempotency(tenant_id, key)
    if found is None:
        return None
    process_id, seen = found
    if seen != fingerprint:
        raise Conflict("this Idempotency-Key was already used with a different request", details={"id": process_id})
    return repository.get(tenant_id, process_id, consistent=True)


# --- read ----------------------------------------------------------------------------------------------------
def require(tenant_id: str, process_id: str, *, consistent: bool = False) -> Process:
    process = repository.get(tenant_id, process_id, consistent=consistent)
    if process is None:
        raise NotFound(f"process {process_id!r} not found")
    return process


def list_processes(
    tenant_id: str, *, state: str | None, process_type: str | None, limit: int, after: str | None
) -> tuple[list[Process], str | None]:
    return repository.query(tenant_id, state=state, process_type=process_type, limit=limit, after=after)


def errors(tenant_id: str, process_id: str) -> list[ErrorSample]:
    return repository.error_samples(require(tenant_id, process_id))


def children(tenant_id: str, process_id: str) -> list[tuple[Process, ChildPolicy]]:
    parent = require(tenant_id, process_id)
    links = repository.child_links(parent)
    policies = {child_id: policy for child_id, policy, _ in links}
    found = repository.many(tenant_id, list(policies))
    found.sort(key=lambda p: p.id)
    return [(child, policies[child.id]) for child in found]


def progress_of(process: Process) -> Progress:
    """Percent, rate and ETA exactly as GET /v1/processes/{id} reports them: as of the last counter change (the
    newest of the record and its counter shards), never the wall clock, so every reader of an unchanged process
    sees the same figures."""
    return progress(process, repository.counters_changed_at(process))


def listed_progress(process: Process) -> Progress:
    """Progress as a list shows it (GET /v1/processes): as of the record's last change, no shard reads."""
    return progress(process, process.updated_at)


# --- control ---------------------------------------------------------------------------------------------------
def pause(tenant_id: str, process_id: str) -> Process:
    process = require(tenant_id, process_id, consistent=True)
    if not repository.pause(process):
        raise _illegal(tenant_id, process_id, "paused", "running")
    return require(tenant_id, process_id, consistent=True)


def resume(tenant_id: str, process_id: str) -> Process:
    """paused -> running; the jobs parked meanwhile are enqueued again by a `processes.unpark` job."""
    process = require(tenant_id, process_id, consistent=True)
    if not repository.resume(process):
        raise _illegal(tenant_id, process_id, "resumed", "paused")
    jobs.enqueue(
        tenant_id,
        NewJob(type="processes.unpark", payload={"process_id": process_id}),
        f"{process_id}:unpark:{utcnow().isoformat()}",
    )
    settle(tenant_id, process_id)  # everything may have finished while it was paused
    return require(tenant_id, process_id, consistent=True)


def cancel(tenant_id: str, process_id: str) -> Process:
    """No new batch starts (a batch job of a cancelled process is skipped); running ones finish and are counted."""
    process = require(tenant_id, process_id, consistent=True)
    if not repository.cancel(process):
        raise _illegal(tenant_id, process_id, "cancelled", "pending, running or paused")
    finished(replace(process, state=State.CANCELLED))
    return require(tenant_id, process_id, consistent=True)


def _illegal(tenant_id: str, process_id: str, verb: str, allowed: str) -> InvalidState:
    current = repository.get(tenant_id, process_id, consistent=True, live=False)
    state = current.state.value if current else "gone"
    return InvalidState(f"process is {state}; only a {allowed} process can be {verb}", details={"state": state})


def unpark(tenant_id: str, process_id: str) -> int:
    """Enqueue again every job parked while the process was paused (a fresh job, same payload and batch)."""
    process = require(tenant_id, process_id, consistent=True)
    if process.state is not State.RUNNING:
        return 0
    done = 0
    for job_id, job_type, payload, batch_key in repository.parked_jobs(process):
        job, _ = jobs.enqueue(
            tenant_id,
            NewJob(type=job_type, payload=payload),
            f"{job_id}:unparked",
            process_id=process_id,
            batch_key=batch_key,
        )
        if batch_key is not None:
            repository.set_batch_job(process_id, batch_key, job.id, previous=job_id)
        repository.unpark(process, job_id)
        done += 1
    return done


# --- fan-out -----------------------------------------------------------------------------------------------------
def add_batches(
    process: Process, payloads: Sequence[dict[str, Any]], *, key: str, sizes: Sequence[int | None] | None = None
) -> int:
    """Declare batches `key.0`, `key.1`... (exactly once, however often this runs) and enqueue their jobs
    (idempotently). Returns how many were new."""
    kind = require_type(process.type)
    specs = [
        (f"{key}.{i}", kind.batch, dict(payload), sizes[i] if sizes else None) for i, payload in enumerate(payloads)
    ]
    declared = repository.declare_batches(process, specs)
    queue = job_registry.require(kind.batch).queue
    for batch_key, job_type, payload, _ in specs:
        job, _ = jobs.enqueue(
            process.tenant_id,
            NewJob(type=job_type, payload=payload),
            f"{process.id}:{batch_key}",
            queue=queue,
            process_id=process.id,
            batch_key=batch_key,
        )
        repository.set_batch_job(process.id, batch_key, job.id)
    return len(declared)


def fetch_done(process: Process, expected_total: int | None = None) -> Process | None:
    """No more batches: the completion gate may now close (also when every batch is done already)."""
    repository.set_fetch_done(process, expected_total)
    return settle(process.tenant_id, process.id)


def start_child(parent: Process, spec: StartSpec, *, key: str, policy: ChildPolicy = ChildPolicy.IGNORE) -> Process:
    """Start a child process (once per `key`: a retried start returns the same child)."""
    child, kind = _new_process(parent.tenant_id, spec, parent=parent)
    child = replace(child, id=_child_id(parent.id, key), child_policy=policy)
    if not repository.insert_child(parent, child, policy):
        existing = repository.get(parent.tenant_id, child.id, consistent=True)
        if existing is None:
            raise Conflict(f"parent process {parent.id} has finished; no child can start")
        child = existing
    enqueue_driver(child, kind)
    return child


def _child_id(parent_id: str, key: str) -> str:
    """A child's id is a function of its parent and key, so a retried start names the same child. It is a valid
    `prc_<ULID>` with the parent's time part, so children sort next to their parent."""
    value = int.from_bytes(hashlib.sha256(f"{parent_id}|{key}".encode()).digest()[:10], "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return parent_id[:14] + "".join(alphabet[(value >> shift) & 31] for shift in range(75, -1, -5))


# --- fan-in ----------------------------------------------------------------------------------------------------
def record(process: Process, batch_key: str, outcome: Outcome, *, job_id: str | None = None) -> bool:
    """Commit one batch's outcome (once), then let the gate look. False: a duplicate, nothing changed."""
    committed = repository.record_batch(process, batch_key, outcome, job_id=job_id)
    if not committed:
        count("DuplicateBatchOutcomes", process.type)
        logger.info("batch outcome already committed; nothing counted", extra={"batch": batch_key})
    settle(process.tenant_id, process.id)
    return committed


def settle(tenant_id: str, process_id: str) -> Process | None:
    """After any change: fail a process whose failures exceed its tolerance, or complete one whose batches and
    children are all done. Reads the counters (consistently, summed over shards) and writes only through the
    conditional transitions, so any number of concurrent callers end it at most once."""
    process = repository.get(tenant_id, process_id, consistent=True, live=False)
    if process is None or process.state.finished:
        return process
    if process.state in (State.RUNNING, State.PAUSED) and process.over_tolerance():
        if repository.fail(process, "failures exceeded the tolerance"):
            count("ProcessesFailed", process.type)
            process = replace(process, state=State.FAILED)
            finished(process)
        return process
    target = process.outcome_state()
    if target is not None and repository.complete(process, target):
        count("ProcessesCompleted" if target is not State.FAILED else "ProcessesFailed", process.type)
        process = replace(process, state=target)
        finished(process)
    return process


def fail(process: Process, reason: str) -> bool:
    if not repository.fail(process, reason):
        return False
    count("ProcessesFailed", process.type)
    finished(replace(process, state=State.FAILED))
    return True


def finished(process: Process) -> None:
    """A process reached a final state: its unfinished children are cancelled, its parent is told (once)."""
    for child_id, _, settled in repository.child_links(process):
        if not settled:
            child = repository.get(process.tenant_id, child_id, consistent=True, live=False)
            if child is not None and not child.state.finished and repository.cancel(child):
                finished(replace(child, state=State.CANCELLED))
    if process.parent_id:
        settle_on_parent(process)


def settle_on_parent(child: Process) -> None:
    parent_id = child.parent_id
    if parent_id is None:
        return
    policy = repository.child_policy_of(parent_id, child.id) or ChildPolicy.IGNORE
    failed = child.state in (State.FAILED, State.CANCELLED)
    release = failed and policy is ChildPolicy.CONTINUE_PARENT
    if not repository.settle_child(child.tenant_id, parent_id, child.id, failed=failed, release=release):
        return  # settled before
    parent = repository.get(child.tenant_id, parent_id, consistent=True, live=False)
    if parent is None:
        return
    if failed:
        note = f"child {child.id} ({child.type}) ended {child.state.value}"
        if policy is ChildPolicy.FAIL_PARENT:
            fail(parent, note + "; its policy fails the parent")
            return
        repository.add_error_sample(parent, ErrorSample(child.id, note))
    settle(parent.tenant_id, parent.id)


def batch_failed(process: Process, batch_key: str, job_id: str, error_type: str, message: str) -> None:
    """A batch's job failed for good: its records count as failed (the batch's size, else 1), once."""
    size = repository.batch_size(process.id, batch_key)
    sample = ErrorSample(batch_key, f"batch failed: {error_type}: {message}"[:500])
    record(process, batch_key, Outcome(failed=size if size else 1, errors=(sample,)), job_id=job_id)


def driver_failed(process: Process, error_type: str, message: str) -> None:
    if fail(process, f"its driver job failed: {error_type}: {message}"[:1000]):
        report_job_failure(
            "ProcessFailed",
            f"process {process.id} failed: its driver job failed ({error_type})",
            tags={"process_id": process.id, "process_type": process.type, "tenant_id": process.tenant_id},
            final=True,
        )
