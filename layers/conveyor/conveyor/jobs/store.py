"""Job storage: the PynamoDB models and every state transition, each a conditional write on the state it expects.

Table layout (template.yaml `JobsTable`):
  pk tenant_id, sk "job_<ULID>"     one job; ULIDs sort by creation, so a tenant's jobs list newest-first by key
  pk tenant_id, sk "idem#<sha256>"  an Idempotency-Key claim pointing at a job (expires after 48 h)
  GSI due-index (due_shard, due_at) sparse, KEYS_ONLY: only `scheduled` jobs carry these attributes
  GSI lease-index (lease_shard, lease_until) sparse, KEYS_ONLY: only `active` jobs carry both; the stalled-job
                                    sweep finds leases that ran out without a scan. The claim sets them and
                                    every way out of `active` removes them: no extra write requests, but the
                                    index costs one write unit when a job is claimed and one when it leaves
                                    `active` (a KEYS_ONLY entry is far below 1 KB)
  expires_at                        TTL attribute: finished jobs age out (retention), reads hide them before that
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError, UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import bind
from conveyor.platform.ids import ulid_floor
from conveyor.platform.settings import get_settings

JOB_PREFIX = "job_"
DUE_SHARDS = 8  # the due index is spread over a few partitions so large schedules never make one hot

SCHEDULED, QUEUED, ACTIVE, RETRYING = "scheduled", "queued", "active", "retrying"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
STATES = (SCHEDULED, QUEUED, ACTIVE, RETRYING, COMPLETED, FAILED, CANCELLED)


class TimelineEntry(MapAttribute):
    state = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    note = UnicodeAttribute(null=True)


class DueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "due-index"
        projection = KeysOnlyProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    due_at = NumberAttribute(range_key=True)


class LeaseIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "lease-index"
        projection = KeysOnlyProjection()

    lease_shard = UnicodeAttribute(hash_key=True)
    lease_until = NumberAttribute(range_key=True)


class JobRecord(Model):
    class Meta:
        table_name = None  # bound from settings by _jobs()

    tenant_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True, attr_name="sk")
    type = UnicodeAttribute()
    queue = UnicodeAttribute()
    state = UnicodeAttribute()
    payload = JSONAttribute()
    attempts = NumberAttribute(default=0)
    max_attempts = NumberAttribute()
    defers = NumberAttribute(default=0)
    progress = NumberAttribute(default=0)
    result = JSONAttribute(null=True)
    error: MapAttribute[str, Any] = MapAttribute(null=True)
    run_at = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    first_deferred_at = UTCDateTimeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    lease_shard = UnicodeAttribute(null=True)
    timeline = ListAttribute(of=TimelineEntry, default=list)
    idempotency_key = UnicodeAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    due_at = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)

    due_index = DueIndex()
    lease_index = LeaseIndex()

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now.timestamp()


class IdempotencyRecord(Model):
    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True, attr_name="sk")
    job_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    expires_at = NumberAttribute()


def _jobs() -> type[JobRecord]:
    return bind(JobRecord, get_settings().jobs_table)


def _idempotency() -> type[IdempotencyRecord]:
    return bind(IdempotencyRecord, get_settings().jobs_table)


def _entry(state: str, now: datetime, note: str | None = None) -> TimelineEntry:
    return TimelineEntry(state=state, at=now, note=note[:300] if note else None)


def _appended(model: type[JobRecord], entry: TimelineEntry) -> Any:
    return model.timeline.set(model.timeline.append([entry]))


def _condition_failed(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def due_shard_for(job_id: str) -> str:
    return str(zlib.crc32(job_id.encode()) % DUE_SHARDS)


# --- create and read ---------------------------------------------------------------------------------
def insert(job: JobRecord, *, idempotency: IdempotencyRecord | None = None) -> bool:
    """Store a new job; with an idempotency claim, both or neither (one transaction). False if the key is taken."""
    model = _jobs()
    if idempotency is None:
        job.save(condition=model.id.does_not_exist())
        return True
    from pynamodb.transactions import TransactWrite

    records = _idempotency()
    claim_free = records.key.does_not_exist() | (records.expires_at <= int(utcnow().timestamp()))
    try:
        with TransactWrite(connection=model._get_connection().connection) as tx:
            tx.save(idempotency, condition=claim_free)
            tx.save(job, condition=model.id.does_not_exist())
    except TransactWriteError as exc:
        reasons = [r.code for r in (exc.cancellation_reasons or []) if r]
        if "ConditionalCheckFailed" in reasons:
            return False
        raise
    return True


def find_idempotency(tenant_id: str, key: str) -> IdempotencyRecord | None:
    try:
        record = _idempotency().get(tenant_id, key)
    except DoesNotExist:
        return None
    return None if record.expires_at <= utcnow().timestamp() else record


def get(tenant_id: str, job_id: str, *, consistent: bool = False) -> JobRecord | None:
    if not job_id.startswith(JOB_PREFIX):
        return None
    try:
        job = _jobs().get(tenant_id, job_id, consistent_read=consistent)
    except DoesNotExist:
        return None
    return None if job.is_expired(utcnow()) else job


def query(
    tenant_id: str, *, state: str | None, job_type: str | None, limit: int, after: str | None
) -> tuple[list[JobRecord], str | None]:
    """A tenant's jobs newest first. Filters apply within the tenant's partition; `after` is the last id seen."""
    model = _jobs()
    condition = model.expires_at.does_not_exist() | (model.expires_at > int(utcnow().timestamp()))
    if state:
        condition &= model.state == state
    if job_type:
        condition &= model.type == job_type
    results = model.query(
        tenant_id,
        model.id.startswith(JOB_PREFIX),
        filter_condition=condition,
        scan_index_forward=False,
        limit=limit,
        page_size=max(limit, 100),
        last_evaluated_key={"tenant_id": {"S": tenant_id}, "sk": {"S": after}} if after else None,
    )
    items = list(results)
    last = results.last_evaluated_key
    return items, (last["sk"]["S"] if last else None)


# --- transitions -------------------------------------------------------------------------------------
def _update(job: JobRecord, actions: list[Any], condition: Any) -> bool:
    """Apply a conditional update; False when the job is no longer in the expected state."""
    try:
        job.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def claim(tenant_id: str, job_id: str, *, lease_seconds: int) -> JobRecord | None:
    """Take a job for one attempt. None if another delivery has it, or it is finished or cancelled.

    An `active` job whose lease has passed (its worker timed out or crashed) can be claimed again: that is a
    new attempt, so a job never stays stuck in `active`.
    """
    model = _jobs()
    now = utcnow()
    job = model(tenant_id, job_id)
    runnable = model.state.is_in(QUEUED, RETRYING) | (
        (model.state == ACTIVE) & (model.lease_until < int(now.timestamp()))
    )
    ok = _update(
        job,
        [
            model.state.set(ACTIVE),
            model.attempts.add(1),
            model.started_at.set(now),
            model.updated_at.set(now),
            model.lease_until.set(int(now.timestamp()) + lease_seconds),
            model.lease_shard.set(due_shard_for(job_id)),
            _appended(model, _entry(ACTIVE, now)),
        ],
        model.id.exists() & runnable,
    )
    return job if ok else None


def _owned(job: JobRecord) -> Any:
    """The condition that this attempt still owns the job (same attempt number, still active)."""
    model = type(job)
    return (model.state == ACTIVE) & (model.attempts == job.attempts)


def set_progress(job: JobRecord, percent: int) -> bool:
    model = type(job)
    return _update(job, [model.progress.set(percent), model.updated_at.set(utcnow())], _owned(job))


def complete(job: JobRecord, result: Any) -> bool:
    model = type(job)
    now = utcnow()
    keep = timedelta(days=get_settings().completed_retention_days)
    return _update(
        job,
        [
            model.state.set(COMPLETED),
            model.result.set(result),
            model.progress.set(100),
            model.finished_at.set(now),
            model.updated_at.set(now),
            model.expires_at.set(int((now + keep).timestamp())),
            model.lease_until.remove(),
            model.lease_shard.remove(),
            _appended(model, _entry(COMPLETED, now)),
        ],
        _owned(job),
    )


def fail(job: JobRecord, error_type: str, message: str) -> bool:
    model = type(job)
    now = utcnow()
    keep = timedelta(days=get_settings().failed_retention_days)
    return _update(
        job,
        [
            model.state.set(FAILED),
            model.error.set({"type": error_type, "message": message[:1000]}),
            model.finished_at.set(now),
            model.updated_at.set(now),
            model.expires_at.set(int((now + keep).timestamp())),
            model.lease_until.remove(),
            model.lease_shard.remove(),
            _appended(model, _entry(FAILED, now, f"{error_type}: {message}")),
        ],
        _owned(job),
    )


def schedule_retry(job: JobRecord, error_type: str, message: str, delay_seconds: int) -> bool:
    """active -> retrying; the same SQS message comes back after `delay_seconds` (its visibility timeout)."""
    model = type(job)
    now = utcnow()
    return _update(
        job,
        [
            model.state.set(RETRYING),
            model.error.set({"type": error_type, "message": message[:1000]}),
            model.updated_at.set(now),
            model.lease_until.remove(),
            model.lease_shard.remove(),
            _appended(model, _entry(RETRYING, now, f"retry in {delay_seconds}s after {error_type}")),
        ],
        _owned(job),
    )


def defer(job: JobRecord, delay_seconds: int, reason: str) -> bool:
    """active -> retrying without spending the attempt (the handler asked to wait, e.g. a rate limit)."""
    model = type(job)
    now = utcnow()
    return _update(
        job,
        [
            model.state.set(RETRYING),
            model.attempts.add(-1),
            model.defers.add(1),
            model.first_deferred_at.set(job.first_deferred_at or now),
            model.updated_at.set(now),
            model.lease_until.remove(),
            model.lease_shard.remove(),
            _appended(model, _entry(RETRYING, now, f"deferred {delay_seconds}s: {reason}")),
        ],
        _owned(job),
    )


def cancel(job: JobRecord) -> bool:
    model = type(job)
    now = utcnow()
    keep = timedelta(days=get_settings().failed_retention_days)
    return _update(
        job,
        [
            model.state.set(CANCELLED),
            model.finished_at.set(now),
            model.updated_at.set(now),
            model.expires_at.set(int((now + keep).timestamp())),
            model.due_shard.remove(),
            model.due_at.remove(),
            _appended(model, _entry(CANCELLED, now)),
        ],
        model.state.is_in(SCHEDULED, QUEUED, RETRYING),
    )


def requeue(job: JobRecord) -> bool:
    """failed/cancelled -> queued with a fresh set of attempts (the dispatcher sends it)."""
    model = type(job)
    now = utcnow()
    return _update(
        job,
        [
            model.state.set(QUEUED),
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
            _appended(model, _entry(QUEUED, now, "retried by request")),
        ],
        model.state.is_in(FAILED, CANCELLED) & (model.updated_at == job.updated_at),
    )


# --- delayed jobs ------------------------------------------------------------------------------------
def due_keys(now: datetime) -> Iterator[tuple[str, str, int]]:
    """(tenant_id, job_id, due_at) of every scheduled job due by `now`, across all shards of the sparse index."""
    index = _jobs().due_index
    for shard in range(DUE_SHARDS):
        for item in index.query(str(shard), DueIndex.due_at <= int(now.timestamp())):
            yield item.tenant_id, item.id, int(item.due_at)


def release(tenant_id: str, job_id: str, due_at: int) -> bool:
    """scheduled -> queued, exactly once: overlapping sweeps race on this condition and only one wins."""
    model = _jobs()
    now = utcnow()
    return _update(
        model(tenant_id, job_id),
        [
            model.state.set(QUEUED),
            model.updated_at.set(now),
            model.due_shard.remove(),
            model.due_at.remove(),
            _appended(model, _entry(QUEUED, now, "released by scheduler")),
        ],
        (model.state == SCHEDULED) & (model.due_at == due_at),
    )


# --- stalled jobs ------------------------------------------------------------------------------------
def stalled_keys(lease_ended_before: datetime) -> Iterator[tuple[str, str, int]]:
    """(tenant_id, job_id, lease_until) of every active job whose lease ended before the given instant."""
    index = _jobs().lease_index
    for shard in range(DUE_SHARDS):
        for item in index.query(str(shard), LeaseIndex.lease_until < int(lease_ended_before.timestamp())):
            yield item.tenant_id, item.id, int(item.lease_until)


def recover_stalled(tenant_id: str, job_id: str, lease_until: int) -> JobRecord | None:
    """active (lease ran out, nothing came back) -> queued again, or failed when that was the last attempt.

    The stalled attempt stays spent (the claim counted it). `queued` goes through the outbox: the dispatcher
    sends a fresh message, because the job's own message is gone (in the DLQ, or deleted). Both updates are
    conditional on the lease seen in the index, so a worker that re-claimed the job meanwhile always wins.
    Returns the job as updated, or None if it was no longer stalled.
    """
    model = _jobs()
    now = utcnow()
    stalled = (model.state == ACTIVE) & (model.lease_until == lease_until)
    ended = datetime.fromtimestamp(lease_until, UTC)
    note = f"stalled: the worker gave no word before its lease ended at {ended:%H:%M:%S}"
    error = {"type": "Stalled", "message": "the worker stopped (timeout or crash) without recording an outcome"}
    job = model(tenant_id, job_id)
    if _update(
        job,
        [
            model.state.set(QUEUED),
            model.error.set(error),
            model.updated_at.set(now),
            model.lease_until.remove(),
            model.lease_shard.remove(),
            _appended(model, _entry(QUEUED, now, note + "; sent again")),
        ],
        stalled & (model.attempts < model.max_attempts),
    ):
        return job
    keep = timedelta(days=get_settings().failed_retention_days)
    if _update(
        job,
        [
            model.state.set(FAILED),
            model.error.set(error),
            model.finished_at.set(now),
            model.updated_at.set(now),
            model.expires_at.set(int((now + keep).timestamp())),
            model.lease_until.remove(),
            model.lease_shard.remove(),
            _appended(model, _entry(FAILED, now, note + "; that was the last attempt")),
        ],
        stalled & (model.attempts >= model.max_attempts),
    ):
        return job
    return None


# --- bounded walks over one tenant's jobs (admin bulk operations, queue overview) ---------------------
def created_key(at: datetime) -> str:
    """The smallest job key created at `at` (job ids are ULIDs: they sort by creation time)."""
    return JOB_PREFIX + ulid_floor(int(at.timestamp() * 1000))


class Page(NamedTuple):
    items: list[JobRecord]
    last: str | None
    scanned: int


def walk(
    tenant_id: str,
    *,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    after: str | None = None,
    condition: Any = None,
    max_examined: int = 500,
    attributes: list[str] | None = None,
) -> Page:
    """ONE page of a tenant's live jobs, newest first, within a creation-time range (a key range, not a filter).

    At most `max_examined` items are read, whatever the filter matches, so a call is bounded in time and
    capacity; `last` continues the walk (None when the range is exhausted). `attributes` (DynamoDB names)
    projects the items, which saves transfer but not read capacity.
    """
    model = _jobs()
    low = created_key(created_from) if created_from else JOB_PREFIX
    high = created_key(created_before) if created_before else JOB_PREFIX + "~"  # "~" sorts after every ULID
    live = model.expires_at.does_not_exist() | (model.expires_at > int(utcnow().timestamp()))
    results = model.query(
        tenant_id,
        model.id.between(low, high),
        filter_condition=live & condition if condition is not None else live,
        scan_index_forward=False,
        page_size=max_examined,
        attributes_to_get=attributes,
        last_evaluated_key={"tenant_id": {"S": tenant_id}, "sk": {"S": after}} if after else None,
    )
    page = next(results.page_iter, None) or {}
    last = results.page_iter.last_evaluated_key
    return Page(
        [model.from_raw_data(item) for item in page.get("Items", [])],
        last["sk"]["S"] if last else None,
        int(page.get("ScannedCount", 0)),
    )


def delete_finished(job: JobRecord) -> bool:
    """Delete a finished job, only if it is still in the state it was read in (a retried job is never lost)."""
    model = type(job)
    try:
        job.delete(condition=(model.state == job.state) & model.state.is_in(COMPLETED, FAILED, CANCELLED))
    except DeleteError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True
