"""Job storage: PynamoDB models private to this module, every state transition a named conditional write on the
state it expects, and domain objects (conveyor.jobs.domain) in and out.

Table layout (template.yaml `JobsTable`):
  pk tenant_id, sk "job_<ULID>"     one job; ULIDs sort by creation, so a tenant's jobs list newest-first by key
  pk tenant_id, sk "idem#<sha256>"  an Idempotency-Key claim pointing at a job (expires after 48 h)
  GSI due-index (due_shard, due_at) sparse, KEYS_ONLY: `scheduled` jobs (shards "0".."7", due_at = release
                                    time), and the watch over jobs on their way through a worker (shards
                                    "q0".."q7"): entering `queued` sets it (due_at: DISPATCH_GRACE_SECONDS after
                                    the job was due to be sent), the claim keeps it (or sets it, due after the
                                    lease plus STALL_GRACE_SECONDS, for a job claimed from `retrying`), the
                                    attempt's settlement and cancel remove it. The sweep that finds it due
                                    sends a queued job again, recovers an active one whose lease ended long ago,
                                    or looks again after the lease of one still running. No extra write
                                    requests, and one index write unit when the job is queued and one when it
                                    settles (a KEYS_ONLY entry is far below 1 KB); `lease_until` is not indexed
  expires_at                        TTL attribute: finished jobs age out (retention), reads hide them before that
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from conveyor.jobs import domain
from conveyor.jobs.domain import (
    CANCELLABLE,
    FINISHED,
    JOB_PREFIX,
    RETRYABLE,
    RUNNABLE,
    IdempotencyClaim,
    Job,
    JobBrief,
    JobError,
    JobKey,
    JobState,
    Page,
    TimelineEvent,
)
from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import (
    CompactJSONAttribute,
    DueIndex,
    across_shards,
    bind,
    conditional,
    due,
    expires_at,
    filtered_page,
    is_expired,
    shard_for,
    start_key,
)
from conveyor.platform.ids import ulid_floor
from conveyor.platform.settings import get_settings


class _TimelineEntry(MapAttribute):
    state = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    note = UnicodeAttribute(null=True)


class _JobRecord(Model):
    class Meta:
        table_name = None  # bound from settings by _jobs()

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True, attr_name="sk")
    type = UnicodeAttribute()
    queue = UnicodeAttribute()
    state = UnicodeAttribute()
    payload = CompactJSONAttribute()
    attempts = NumberAttribute(default=0)
    max_attempts = NumberAttribute()
    defers = NumberAttribute(default=0)
    progress = NumberAttribute(default=0)
    result = CompactJSONAttribute(null=True)
    error: MapAttribute[str, Any] = MapAttribute(null=True)
    run_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    first_deferred_at = UTCDateTimeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    timeline = ListAttribute(of=_TimelineEntry, default=list)
    timeline_dropped = NumberAttribute(null=True)  # entries left out between the first and last TIMELINE_KEEP
    redispatches = NumberAttribute(null=True)  # times the dispatch sweep sent it again
    idempotency_key = UnicodeAttribute(null=True)
    correlation_id = UnicodeAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    process_id = UnicodeAttribute(null=True)
    batch_key = UnicodeAttribute(null=True)
    checkpoint = CompactJSONAttribute(null=True)
    continues = NumberAttribute(null=True)

    due_index = DueIndex()


class _IdempotencyRecord(Model):
    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True, attr_name="sk")
    job_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    expires_at = NumberAttribute()


def _jobs() -> type[_JobRecord]:
    return bind(_JobRecord, get_settings().jobs_table)


def _idempotency() -> type[_IdempotencyRecord]:
    return bind(_IdempotencyRecord, get_settings().jobs_table)


# --- records <-> domain --------------------------------------------------------------------------------
def _job(record: _JobRecord) -> Job:
    error = record.error.as_dict() if record.error else None
    return Job(
        tenant_id=record.tenant_id,
        id=record.id,
        type=record.type,
        queue=record.queue,
        state=record.state,
        payload=record.payload or {},
        max_attempts=int(record.max_attempts),
        created_at=record.created_at,
        updated_at=record.updated_at,
        attempts=int(record.attempts or 0),
        defers=int(record.defers or 0),
        progress=int(record.progress or 0),
        result=record.result,
        error=JobError(str(error["type"]), str(error["message"])) if error else None,
        run_at=record.run_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        first_deferred_at=record.first_deferred_at,
        lease_until=int(record.lease_until) if record.lease_until is not None else None,
        idempotency_key=record.idempotency_key,
        correlation_id=record.correlation_id,
        expires_at=int(record.expires_at) if record.expires_at is not None else None,
        timeline=tuple(TimelineEvent(e.state, e.at, e.note) for e in record.timeline or []),
        process_id=record.process_id,
        batch_key=record.batch_key,
        checkpoint=record.checkpoint,
        continues=int(record.continues or 0),
        timeline_dropped=int(record.timeline_dropped or 0),
        redispatches=int(record.redispatches or 0),
    )


def _record(job: Job) -> _JobRecord:
    record = _jobs()(
        job.tenant_id,
        job.id,
        type=job.type,
        queue=job.queue,
        state=job.state,
        payload=job.payload,
        max_attempts=job.max_attempts,
        attempts=job.attempts,
        defers=job.defers,
        progress=job.progress,
        result=job.result,
        error={"type": job.error.type, "message": job.error.message} if job.error else None,
        run_at=job.run_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        first_deferred_at=job.first_deferred_at,
        idempotency_key=job.idempotency_key,
        correlation_id=job.correlation_id,
        expires_at=job.expires_at,
        timeline=[_entry(e.state, e.at, e.note) for e in job.timeline],
        process_id=job.process_id,
        batch_key=job.batch_key,
    )
    if job.state == JobState.SCHEDULED and job.run_at is not None:  # waits in the due index for the sweep
        record.due_shard, record.due_at = shard_for(job.id), int(job.run_at.timestamp())
    elif job.state == JobState.QUEUED:  # watched until a worker claims it
        record.due_shard = _dispatch_shard(job.id)
        record.due_at = int((job.run_at or job.created_at).timestamp()) + domain.DISPATCH_GRACE_SECONDS
    return record


def from_stream_image(image: dict[str, Any]) -> Job:
    """A job from a DynamoDB stream record's NewImage (the dispatcher's input)."""
    return _job(_JobRecord.from_raw_data(image))


def _entry(state: str, now: datetime, note: str | None = None) -> _TimelineEntry:
    return _TimelineEntry(state=str(state), at=now, note=note[:300] if note else None)


def _appended(model: type[_JobRecord], entry: _TimelineEntry) -> Any:
    """Append to a timeline this write has not read (release, stalled recovery, cancel, claim): one entry more.
    The next transition that owns the job trims it again (`_recorded`)."""
    return model.timeline.set(model.timeline.append([entry]))


def _recorded(job: Job, entry: _TimelineEntry) -> list[Any]:
    """Append to the timeline `job` holds, keeping it bounded: its first TIMELINE_KEEP entries and its last
    TIMELINE_KEEP, with the number left out between them in `timeline_dropped`. Only for writes conditional on
    the job being exactly as read (the worker's own attempt, a retry of the version read), so the whole list
    can be written back without losing a concurrent entry. Keeps the item far below DynamoDB's 400 KB however
    many times a job is retried."""
    model = _jobs()
    keep = domain.TIMELINE_KEEP
    if len(job.timeline) + 1 <= 2 * keep:
        return [_appended(model, entry)]
    entries = [*(_entry(e.state, e.at, e.note) for e in job.timeline), entry]
    return [
        model.timeline.set(entries[:keep] + entries[-keep:]),
        model.timeline_dropped.add(len(entries) - 2 * keep),
    ]


def _dispatch_shard(job_id: str) -> str:
    return "q" + shard_for(job_id)


def _watched(model: type[_JobRecord], job_id: str, now: datetime, delay: int | None = None) -> list[Any]:
    """The actions that put a job entering `queued` in the watch (see the table layout)."""
    at = int(now.timestamp()) + (domain.DISPATCH_GRACE_SECONDS if delay is None else delay)
    return [model.due_shard.set(_dispatch_shard(job_id)), model.due_at.set(at)]


def _unwatched(model: type[_JobRecord]) -> list[Any]:
    """The actions that take a job leaving a worker out of the watch, its lease released."""
    return [model.lease_until.remove(), model.due_shard.remove(), model.due_at.remove()]


def _update(tenant_id: str, job_id: str, actions: list[Any], condition: Any) -> Job | None:
    """Apply a conditional update; the job as it is now, or None when it was not in the expected state."""
    record = _jobs()(tenant_id, job_id)
    if not conditional(lambda: record.update(actions=actions, condition=condition)):
        return None
    return _job(record)


def _retention(now: datetime, days: int) -> int:
    return expires_at(now, timedelta(days=days))


# --- create and read ---------------------------------------------------------------------------------
def insert(job: Job, *, idempotency: IdempotencyClaim | None = None, replacing: str | None = None) -> bool:
    """Store a new job; with an idempotency claim, both or neither (one transaction). False if the key is taken,
    or a job with this id exists (an id derived from what the job is for, see service.enqueue).

    A claim is free when absent, expired, or (`replacing`) still pointing at that job id, which the caller found
    gone: a deleted job's key may be used again at once, and two such requests still race on the condition.
    """
    if idempotency is None:
        model = _jobs()
        return conditional(lambda: _record(job).save(condition=model.id.does_not_exist()))
    return not insert_claimed([(job, idempotency, replacing)])


TRANSACT_JOBS = 50  # a job and its claim are two actions; DynamoDB takes at most 100 in a transaction


def insert_claimed(entries: Sequence[tuple[Job, IdempotencyClaim, str | None]]) -> set[str]:
    """Store new jobs each with its idempotency claim (and the job id it may replace, as `insert`): a job and its
    claim both or neither, TRANSACT_JOBS to a transaction. Returns the ids of the jobs whose key was taken (not
    stored); the others are. A transaction that a taken claim cancels is sent again without that job. The keys
    must differ (a transaction cannot write one item twice)."""
    taken: set[str] = set()
    for start in range(0, len(entries), TRANSACT_JOBS):
        pending = list(entries[start : start + TRANSACT_JOBS])
        while pending:
            refused = _transact(pending)
            if not refused:
                break
            taken |= {pending[i][0].id for i in refused}
            pending = [entry for i, entry in enumerate(pending) if i not in refused]
    return taken


def _transact(entries: Sequence[tuple[Job, IdempotencyClaim, str | None]]) -> set[int]:
    """One transaction of (claim, job) pairs: the positions whose claim condition failed (nothing was written),
    or an empty set (everything was)."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    model, claims = _jobs(), _idempotency()
    now = int(utcnow().timestamp())
    try:
        with TransactWrite(connection=model._get_connection().connection) as tx:  # noqa: SLF001
            for job, idempotency, replacing in entries:
                claim = claims(
                    idempotency.tenant_id,
                    idempotency.key,
                    job_id=idempotency.job_id,
                    fingerprint=idempotency.fingerprint,
                    expires_at=idempotency.expires_at,
                )
                claim_free = claims.key.does_not_exist() | (claims.expires_at <= now)
                if replacing is not None:
                    claim_free |= claims.job_id == replacing
                tx.save(claim, condition=claim_free)
                tx.save(_record(job), condition=model.id.does_not_exist())
    except TransactWriteError as exc:
        reasons = exc.cancellation_reasons or []
        refused = {i // 2 for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"}
        if not refused:
            raise
        return refused
    return set()


BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem limit
BATCH_WRITE_ATTEMPTS = 6
BATCH_BACKOFF_SECONDS = 0.05  # full jitter, doubling: the retries wait ~1.5 s at most in all


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, BATCH_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter, not crypto


def insert_many(jobs: Sequence[Job]) -> set[str]:
    """Store new jobs without an idempotency claim, BATCH_WRITE_LIMIT to a BatchWriteItem (no conditions: a job
    id is a fresh ULID, nothing can be overwritten); UnprocessedItems are sent again with backoff. Returns the ids
    of the jobs still unwritten after BATCH_WRITE_ATTEMPTS (throttled): those were not stored at all."""
    if not jobs:
        return set()
    model = _jobs()
    connection, table = model._get_connection(), model.Meta.table_name  # noqa: SLF001 - PynamoDB's own batch
    unwritten: set[str] = set()
    for start in range(0, len(jobs), BATCH_WRITE_LIMIT):
        pending = [_record(job).serialize() for job in jobs[start : start + BATCH_WRITE_LIMIT]]
        for attempt in range(BATCH_WRITE_ATTEMPTS):
            if attempt:
                _backoff(attempt)
            answer = connection.batch_write_item(put_items=pending) or {}
            left = answer.get("UnprocessedItems", {}).get(table, [])
            pending = [entry["PutRequest"]["Item"] for entry in left]
            if not pending:
                break
        unwritten |= {item["sk"]["S"] for item in pending}
    return unwritten


def find_idempotencies(tenant_id: str, keys: Sequence[str]) -> dict[str, IdempotencyClaim]:
    """The live claims among `keys` (hashed, as `find_idempotency` takes them) by BatchGetItem, 100 to a request:
    what `find_idempotency` answers for each, read at once."""
    if not keys:
        return {}
    now = utcnow()
    records = _idempotency().batch_get([(tenant_id, key) for key in dict.fromkeys(keys)])
    return {
        r.key: IdempotencyClaim(tenant_id, r.key, r.job_id, r.fingerprint, int(r.expires_at))
        for r in records
        if not is_expired(r.expires_at, now)
    }


def find_idempotency(tenant_id: str, key: str) -> IdempotencyClaim | None:
    try:
        record = _idempotency().get(tenant_id, key)
    except DoesNotExist:
        return None
    if is_expired(record.expires_at, utcnow()):
        return None
    return IdempotencyClaim(tenant_id, key, record.job_id, record.fingerprint, int(record.expires_at))


def get(tenant_id: str, job_id: str, *, consistent: bool = False, include_expired: bool = False) -> Job | None:
    """A tenant's job; None if there is none, or it has expired (unless `include_expired`: what TTL left)."""
    if not job_id.startswith(JOB_PREFIX):
        return None
    try:
        record = _jobs().get(tenant_id, job_id, consistent_read=consistent)
    except DoesNotExist:
        return None
    if is_expired(record.expires_at, utcnow()) and not include_expired:
        return None
    return _job(record)


def _live(model: type[_JobRecord]) -> Any:
    return model.expires_at.does_not_exist() | (model.expires_at > int(utcnow().timestamp()))


def query(
    tenant_id: str,
    *,
    state: str | None,
    job_type: str | None,
    limit: int,
    after: str | None,
    queue: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    oldest_first: bool = False,
    exclude_types: list[str] | None = None,
) -> tuple[list[Job], str | None]:
    """A tenant's jobs newest first (or oldest first). Filters apply within the tenant's partition, a bounded
    number of items read per call (`filtered_page`); the creation range is a key range (job ids are ULIDs), not a
    filter; `after` is the last id seen."""
    model = _jobs()
    condition = _live(model)
    if state:
        condition &= model.state == state
    if job_type:
        condition &= model.type == job_type
    if exclude_types:
        condition &= ~model.type.is_in(*exclude_types)
    if queue:
        condition &= model.queue == queue
    if created_from or created_before:
        low = created_key(created_from) if created_from else JOB_PREFIX
        high = created_key(created_before) if created_before else JOB_PREFIX + "~"  # "~" sorts after every ULID
        key_condition: Condition = model.id.between(low, high)
    else:
        key_condition = model.id.startswith(JOB_PREFIX)
    results = model.query(
        tenant_id,
        key_condition,
        filter_condition=condition,
        scan_index_forward=oldest_first,
        page_size=max(limit, 100),
        last_evaluated_key=start_key(tenant_id, after) if after else None,
    )
    records, last = filtered_page(results, model, limit=limit)
    return [_job(r) for r in records], (last["sk"]["S"] if last else None)


# --- transitions -------------------------------------------------------------------------------------
def claim(tenant_id: str, job_id: str, *, lease_seconds: int) -> Job | None:
    """Take a job for one attempt. None if another delivery has it, or it is finished or cancelled.

    An `active` job whose lease has passed (its worker timed out or crashed) can be claimed again: that is a
    new attempt, so a job never stays stuck in `active`.
    """
    model = _jobs()
    now = utcnow()
    lease_until = int(now.timestamp()) + lease_seconds
    runnable = model.state.is_in(*RUNNABLE) | (
        (model.state == JobState.ACTIVE) & (model.lease_until < int(now.timestamp()))
    )
    return _update(
        tenant_id,
        job_id,
        [
            model.state.set(JobState.ACTIVE),
            model.attempts.add(1),
            model.started_at.set(now),
            model.updated_at.set(now),
            model.lease_until.set(lease_until),
            # The watch entry stays as it is (no index write); a job claimed from `retrying` gets one
            model.due_shard.set(model.due_shard | _dispatch_shard(job_id)),
            model.due_at.set(model.due_at | (lease_until + domain.STALL_GRACE_SECONDS)),
            _appended(model, _entry(JobState.ACTIVE, now)),
        ],
        model.id.exists() & runnable,
    )


def _owned(job: Job) -> Any:
    """The condition that this attempt still owns the job (same attempt number, still active)."""
    model = _jobs()
    return (model.state == JobState.ACTIVE) & (model.attempts == job.attempts)


def set_progress(job: Job, percent: int) -> bool:
    model = _jobs()
    actions = [model.progress.set(percent), model.updated_at.set(utcnow())]
    return _update(job.tenant_id, job.id, actions, _owned(job)) is not None


def _leave_active(job: Job, state: str, now: datetime, note: str | None, *actions: Any) -> bool:
    """The one shape of every settlement of an attempt (active -> `state`): the lease released and the job out
    of the watch, the change recorded in the timeline, `actions` applied, all only while this attempt still owns
    the job."""
    model = _jobs()
    released = [model.updated_at.set(now), *_unwatched(model)]
    recorded = _recorded(job, _entry(state, now, note))
    return (
        _update(job.tenant_id, job.id, [model.state.set(state), *actions, *released, *recorded], _owned(job))
        is not None
    )


def complete(job: Job, result: Any) -> bool:
    """active -> completed, kept for the completed retention."""
    model, now = _jobs(), utcnow()
    return _leave_active(
        job,
        JobState.COMPLETED,
        now,
        None,
        model.result.set(result),
        model.progress.set(100),
        model.finished_at.set(now),
        model.expires_at.set(_retention(now, get_settings().completed_retention_days)),
    )


def fail(job: Job, error_type: str, message: str) -> bool:
    """active -> failed for good, kept for the failed retention."""
    model, now = _jobs(), utcnow()
    return _leave_active(
        job,
        JobState.FAILED,
        now,
        f"{error_type}: {message}",
        model.error.set({"type": error_type, "message": message[:1000]}),
        model.finished_at.set(now),
        model.expires_at.set(_retention(now, get_settings().failed_retention_days)),
    )


def schedule_retry(job: Job, error_type: str, message: str, delay_seconds: int) -> bool:
    """active -> retrying; the same SQS message comes back after `delay_seconds` (its visibility timeout)."""
    model, now = _jobs(), utcnow()
    note = f"retry in {delay_seconds}s after {error_type}"
    return _leave_active(
        job, JobState.RETRYING, now, note, model.error.set({"type": error_type, "message": message[:1000]})
    )


def defer(job: Job, delay_seconds: int, reason: str) -> bool:
    """active -> retrying without spending the attempt (the handler asked to wait, e.g. a rate limit)."""
    model, now = _jobs(), utcnow()
    return _leave_active(
        job,
        JobState.RETRYING,
        now,
        f"deferred {delay_seconds}s: {reason}",
        model.attempts.add(-1),
        model.defers.add(1),
        model.first_deferred_at.set(job.first_deferred_at or now),
    )


def continue_later(job: Job, state: Any) -> bool:
    """active -> queued with the handler's checkpoint saved and the attempt given back (the outbox resends it)."""
    model = _jobs()
    now = utcnow()
    note = f"continues from a checkpoint (run {job.continues + 2})"
    return (
        _update(
            job.tenant_id,
            job.id,
            [
                model.state.set(JobState.QUEUED),
                model.attempts.add(-1),
                model.checkpoint.set(state),
                model.continues.set(job.continues + 1),
                model.run_at.remove(),
                model.updated_at.set(now),
                model.lease_until.remove(),
                *_watched(model, job.id, now),
                *_recorded(job, _entry(JobState.QUEUED, now, note)),
            ],
            _owned(job),
        )
        is not None
    )


def cancel(job: Job) -> Job | None:
    """scheduled | queued | retrying -> cancelled; the cancelled job, or None if it was in another state."""
    model = _jobs()
    now = utcnow()
    return _update(
        job.tenant_id,
        job.id,
        [
            model.state.set(JobState.CANCELLED),
            model.finished_at.set(now),
            model.updated_at.set(now),
            model.expires_at.set(_retention(now, get_settings().failed_retention_days)),
            model.due_shard.remove(),
            model.due_at.remove(),
            _appended(model, _entry(JobState.CANCELLED, now)),
        ],
        model.state.is_in(*CANCELLABLE),
    )


def requeue(job: Job) -> Job | None:
    """failed | cancelled -> queued with a fresh set of attempts (the dispatcher sends it), only if the job is
    still as it was read; the requeued job, or None."""
    model = _jobs()
    now = utcnow()
    return _update(
        job.tenant_id,
        job.id,
        [
            model.state.set(JobState.QUEUED),
            model.attempts.set(0),
            model.defers.set(0),
            model.progress.set(0),
            model.run_at.set(now),
            model.updated_at.set(now),
            model.error.remove(),
            model.result.remove(),
            model.finished_at.remove(),
            model.first_deferred_at.remove(),
            model.expires_at.remove(),
            *_watched(model, job.id, now),
            *_recorded(job, _entry(JobState.QUEUED, now, "retried by request")),
        ],
        model.state.is_in(*RETRYABLE) & (model.updated_at == job.updated_at),
    )


def delete_finished(job: Job) -> bool:
    """Delete a finished job, only if it is still in the state it was read in (a retried job is never lost)."""
    model = _jobs()
    record = model(job.tenant_id, job.id)
    condition = (model.state == job.state) & model.state.is_in(*FINISHED)
    return conditional(lambda: record.delete(condition=condition))


# --- delayed jobs ------------------------------------------------------------------------------------
def due_keys(now: datetime) -> Iterator[JobKey]:
    """Every scheduled job due by `now` (with its due_at), across all shards of the sparse index."""
    for item in due(_jobs().due_index, now):
        yield JobKey(item.tenant_id, item.id, int(item.due_at))


def release(tenant_id: str, job_id: str, due_at: int) -> bool:
    """scheduled -> queued, exactly once: overlapping sweeps race on this condition and only one wins."""
    model = _jobs()
    now = utcnow()
    actions = [
        model.state.set(JobState.QUEUED),
        model.updated_at.set(now),
        *_watched(model, job_id, now),
        _appended(model, _entry(JobState.QUEUED, now, "released by scheduler")),
    ]
    return (
        _update(tenant_id, job_id, actions, (model.state == JobState.SCHEDULED) & (model.due_at == due_at)) is not None
    )


def run_early(job: Job) -> Job | None:
    """scheduled -> queued now, run_at moved to now (so the dispatcher sends it without a delay). Races the
    scheduler's release on the state: exactly one of them moves the job; None if it was no longer scheduled."""
    model = _jobs()
    now = utcnow()
    actions = [
        model.state.set(JobState.QUEUED),
        model.run_at.set(now),
        model.updated_at.set(now),
        *_watched(model, job.id, now),
        _appended(model, _entry(JobState.QUEUED, now, "run now by request")),
    ]
    return _update(job.tenant_id, job.id, actions, model.state == JobState.SCHEDULED)


# --- the watch: queued jobs no worker took, active ones whose worker stopped ------------------------------
def watched_keys(now: datetime) -> Iterator[JobKey]:
    """Every job in the watch whose check is due by `now` (with that check's due_at), across all shards."""
    index = _jobs().due_index
    until = int(now.timestamp())
    for item in across_shards(lambda shard: index.query("q" + shard, DueIndex.due_at <= until)):
        yield JobKey(item.tenant_id, item.id, int(item.due_at))


def redispatch(job: Job, due_at: int) -> Job | None:
    """queued (no worker took it) -> queued again with `redispatches` + 1, which makes the stream carry it to the
    dispatcher once more; the next check backs off (doubling, capped). Conditional on the check seen in the
    index, so overlapping sweeps send it once; None if a worker claimed it (or anything else moved it)."""
    model = _jobs()
    now = utcnow()
    delay = min(domain.DISPATCH_CHECK_CAP_SECONDS, domain.DISPATCH_GRACE_SECONDS * 2 ** (job.redispatches + 1))
    note = f"no worker took it {domain.DISPATCH_GRACE_SECONDS // 60} min after it was due: sent again"
    return _update(
        job.tenant_id,
        job.id,
        [
            model.redispatches.add(1),
            model.updated_at.set(now),
            *_watched(model, job.id, now, delay),
            _appended(model, _entry(JobState.QUEUED, now, note)),
        ],
        (model.state == JobState.QUEUED) & (model.due_at == due_at),
    )


def watch_lease(job: Job, due_at: int) -> bool:
    """An active job whose worker still holds its lease: looked at again STALL_GRACE_SECONDS after the lease ends
    (only jobs still running when their first check comes pay this write). Conditional on the check and the lease
    seen, so a job that settled or was claimed again meanwhile is left alone."""
    model = _jobs()
    if job.lease_until is None:
        return False
    condition = (model.state == JobState.ACTIVE) & (model.due_at == due_at) & (model.lease_until == job.lease_until)
    actions = [model.due_at.set(job.lease_until + domain.STALL_GRACE_SECONDS)]
    return _update(job.tenant_id, job.id, actions, condition) is not None


def recover_stalled(tenant_id: str, job_id: str, lease_until: int) -> Job | None:
    """active (lease ran out, nothing came back) -> queued again, or failed when that was the last attempt.

    The stalled attempt stays spent (the claim counted it). `queued` goes through the outbox: the dispatcher
    sends a fresh message, because the job's own message is gone (in the DLQ, or deleted). Both updates are
    conditional on the lease seen, so a worker that re-claimed the job meanwhile always wins.
    Returns the job as updated, or None if it was no longer stalled.
    """
    model = _jobs()
    now = utcnow()
    stalled = (model.state == JobState.ACTIVE) & (model.lease_until == lease_until)
    ended = datetime.fromtimestamp(lease_until, UTC)
    note = f"stalled: the worker gave no word before its lease ended at {ended:%H:%M:%S}"
    error = {"type": "Stalled", "message": "the worker stopped (timeout or crash) without recording an outcome"}
    again = _update(
        tenant_id,
        job_id,
        [
            model.state.set(JobState.QUEUED),
            model.error.set(error),
            model.updated_at.set(now),
            model.lease_until.remove(),
            *_watched(model, job_id, now),
            _appended(model, _entry(JobState.QUEUED, now, note + "; sent again")),
        ],
        stalled & (model.attempts < model.max_attempts),
    )
    if again is not None:
        return again
    return _update(
        tenant_id,
        job_id,
        [
            model.state.set(JobState.FAILED),
            model.error.set(error),
            model.updated_at.set(now),
            *_unwatched(model),
            model.finished_at.set(now),
            model.expires_at.set(_retention(now, get_settings().failed_retention_days)),
            _appended(model, _entry(JobState.FAILED, now, note + "; that was the last attempt")),
        ],
        stalled & (model.attempts >= model.max_attempts),
    )


# --- bounded walks over one tenant's jobs (admin bulk operations, queue overview) ---------------------
def created_key(at: datetime) -> str:
    """The smallest job key created at `at` (job ids are ULIDs: they sort by creation time)."""
    return JOB_PREFIX + ulid_floor(int(at.timestamp() * 1000))


_BRIEF = ["tenant_id", "sk", "state", "queue", "finished_at", "expires_at"]


def _walk(
    tenant_id: str,
    *,
    created_from: datetime | None,
    created_before: datetime | None,
    after: str | None,
    condition: Any,
    max_examined: int,
    attributes: list[str] | None = None,
) -> tuple[list[_JobRecord], str | None, int]:
    model = _jobs()
    low = created_key(created_from) if created_from else JOB_PREFIX
    high = created_key(created_before) if created_before else JOB_PREFIX + "~"  # "~" sorts after every ULID
    live = _live(model)
    results = model.query(
        tenant_id,
        model.id.between(low, high),
        filter_condition=live & condition if condition is not None else live,
        scan_index_forward=False,
        page_size=max_examined,
        attributes_to_get=attributes,
        last_evaluated_key=start_key(tenant_id, after) if after else None,
    )
    page = next(results.page_iter, None) or {}
    last = results.page_iter.last_evaluated_key
    records = [model.from_raw_data(item) for item in page.get("Items", [])]
    return records, (last["sk"]["S"] if last else None), int(page.get("ScannedCount", 0))


def walk(
    tenant_id: str,
    *,
    state: str | None = None,
    job_type: str | None = None,
    queue: str | None = None,
    finished_before: datetime | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    after: str | None = None,
    max_examined: int = 500,
) -> Page[Job]:
    """ONE page of a tenant's live jobs, newest first, within a creation-time range (a key range, not a filter),
    filtered by state, type and finish time. At most `max_examined` items are read, whatever the filter
    matches, so a call is bounded in time and capacity; `last` continues the walk."""
    model = _jobs()
    condition = None
    for part in (
        model.state == state if state else None,
        model.type == job_type if job_type else None,
        model.queue == queue if queue else None,
        model.finished_at < finished_before if finished_before else None,
    ):
        if part is not None:
            condition = part if condition is None else condition & part
    records, last, scanned = _walk(
        tenant_id,
        created_from=created_from,
        created_before=created_before,
        after=after,
        condition=condition,
        max_examined=max_examined,
    )
    return Page([_job(r) for r in records], last, scanned)


def briefs(tenant_id: str, *, created_from: datetime, after: str | None, max_examined: int) -> Page[JobBrief]:
    """Like `walk`, projected to what counting needs (saves transfer, not read capacity)."""
    records, last, scanned = _walk(
        tenant_id,
        created_from=created_from,
        created_before=None,
        after=after,
        condition=None,
        max_examined=max_examined,
        attributes=_BRIEF,
    )
    return Page([JobBrief(r.id, r.queue, r.state, r.finished_at) for r in records], last, scanned)
