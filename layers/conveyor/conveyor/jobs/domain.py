"""A job and its life: states, the transitions between them, and what a job looks like to everyone else.

    scheduled -> queued -> active -> completed
                   ^         |  \\-> failed  (permanent error, attempts spent, unknown type, bad payload)
                   |         \\--> retrying -> active ...   (transient error: backoff; RetryLater: deferred)
    scheduled | queued | retrying -> cancelled          failed | cancelled -> queued (retried by request)

Pure: no I/O. The repository makes each arrow a conditional write on the state it leaves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, NamedTuple, TypeVar

from conveyor.platform.errors import ConveyorError

T = TypeVar("T")

JOB_PREFIX = "job_"
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds ceiling; jobs due later wait as `scheduled` for the sweep
# A queued job no worker has claimed this long after it was due to be sent is sent again through the outbox
# (its dispatch may have failed past the stream's retries); later checks back off, doubling up to a cap.
DISPATCH_GRACE_SECONDS = 900
DISPATCH_CHECK_CAP_SECONDS = 6 * 3600
# A worker's lease is its remaining invocation time + a margin. A worker that crashed or timed out leaves its
# message invisible for the queue's VisibilityTimeout (360 s in template.yaml); when it comes back, the worker
# re-claims the job itself. The sweep waits longer than that after a lease ends, so it only acts on jobs whose
# message is gone (moved to the DLQ, deleted) and never races the normal path.
STALL_GRACE_SECONDS = 600
TIMELINE_KEEP = 20  # a job's timeline keeps its first and its last this many entries (and counts the rest)


class JobState(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


STATES: tuple[str, ...] = tuple(JobState)
FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
CANCELLABLE = (JobState.SCHEDULED, JobState.QUEUED, JobState.RETRYING)
RETRYABLE = (JobState.FAILED, JobState.CANCELLED)  # retried by request: a fresh set of attempts
RUNNABLE = (JobState.QUEUED, JobState.RETRYING)  # a worker may claim it (or `active` with its lease run out)


@dataclass(frozen=True)
class JobError:
    type: str
    message: str


@dataclass(frozen=True)
class TimelineEvent:
    state: str
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class Job:
    """One job as stored. Ids are "job_<ULID>": they sort by creation time."""

    tenant_id: str
    id: str
    type: str
    queue: str
    state: str
    payload: dict[str, Any]
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    defers: int = 0
    progress: int = 0
    result: Any = None
    error: JobError | None = None
    run_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    first_deferred_at: datetime | None = None
    lease_until: int | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None  # the API request (or job) that made it; carried into its messages and logs
    expires_at: int | None = None
    timeline: tuple[TimelineEvent, ...] = field(default=())
    process_id: str | None = None  # the process this job belongs to (conveyor.processes), if any
    batch_key: str | None = None  # ...and the batch of it that it runs (None: the process's own job)
    checkpoint: Any = None  # state saved by the handler's last Continue
    continues: int = 0
    redispatches: int = 0  # times the dispatch sweep sent it again (it stayed queued past DISPATCH_GRACE_SECONDS)
    timeline_dropped: int = 0  # entries left out between the first and the last TIMELINE_KEEP

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class IdempotencyClaim:
    """An Idempotency-Key, hashed, pointing at the job the first request made (for the idempotency window)."""

    tenant_id: str
    key: str
    job_id: str
    fingerprint: str
    expires_at: int


class JobKey(NamedTuple):
    """A job found in the due index, with the due_at its transition is conditional on."""

    tenant_id: str
    job_id: str
    at: int


@dataclass(frozen=True)
class JobBrief:
    """What counting needs of a job (a projection: cheaper to read than the whole job)."""

    id: str
    queue: str
    state: str
    finished_at: datetime | None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One bounded page of a walk over a tenant's jobs: `last` continues it (None: the range is exhausted)."""

    items: list[T]
    last: str | None
    scanned: int


@dataclass(frozen=True)
class NewJob:
    """What a caller asks for when it enqueues (validated at the edge; the payload by the job type's model)."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    run_at: datetime | None = None
    delay_seconds: int | None = None
    max_attempts: int | None = None

    def fingerprint(self) -> str:
        """What an Idempotency-Key is bound to: a replay with the same key must ask for the same job."""
        canonical = {
            "type": self.type,
            "payload": self.payload,
            "run_at": self.run_at.isoformat() if self.run_at else None,
            "delay_seconds": self.delay_seconds,
            "max_attempts": self.max_attempts,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Enqueued:
    """One item of a batch enqueue: the job (`created` or an earlier one its Idempotency-Key made), or the error
    the single enqueue would have raised for it."""

    job: Job | None = None
    created: bool = False
    error: ConveyorError | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """What one bounded bulk call did: `next_cursor` continues it (None: nothing more matches)."""

    changed: int
    skipped: int  # matched, but changed state meanwhile (left as they are)
    examined: int
    next_cursor: str | None = None
