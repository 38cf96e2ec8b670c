"""Process storage (private to this capability): PynamoDB models and every transition, each a named conditional
write on the states it may come from (domain.TRANSITIONS). Returns domain objects and booleans.

Table layout (template.yaml `ProcessesTable`, keys `pk`/`sk`):
  tenant#<tenant>  prc_<ULID>        the process record; a tenant's processes list newest-first by key
  tenant#<tenant>  idem#<sha256>     an Idempotency-Key claim pointing at a process (48 h)
  prc_<ULID>       live              heartbeat, stall mark and rate snapshots; while running it carries
                                     `live_shard`, so the sparse `live-index` finds silent processes
  prc_<ULID>       b#<batch key>     a declared batch: the job that runs it (type, payload, job id)
  prc_<ULID>       c#<child id>      a child: its policy, and whether its ending was settled on this parent
  prc_<ULID>       p#<job id>        a job parked while the process was paused (re-enqueued on resume)
  prc_<ULID>#<k>   d#<batch key>     the batch ledger: a batch's committed outcome (one per batch, ever)
  prc_<ULID>#<k>   counters          counter shard k (only when the process has counter_shards > 0)
  prc_<ULID>#<k>   e#<ULID>          error samples, written with the outcome that reported them
Shard k of a batch is crc32(batch key) % max(1, counter_shards): its ledger item and its counter shard share a
partition key, so a commit touches one hot key per shard, not one per process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import CompactJSONAttribute, bind, filtered_page
from conveyor.platform.ids import ulid
from conveyor.platform.settings import SettingsError, get_settings
from conveyor.processes.domain import (
    ERRORS_PER_BATCH,
    MAX_ERROR_SAMPLES,
    ChildPolicy,
    Children,
    Counters,
    ErrorSample,
    Outcome,
    Process,
    Snapshot,
    State,
    Tolerance,
    allowed_from,
    next_snapshots,
    shard_of,
)

PREFIX = "prc_"
LIVE_SHARDS = 4
IDEMPOTENCY_WINDOW = timedelta(hours=48)
RETENTION = timedelta(days=30)  # finished processes and all their items expire (TTL) this long after finishing


class _Item(Model):
    class Meta:
        table_name = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute(null=True)


class ProcessRecord(_Item):
    tenant_id = UnicodeAttribute()
    type = UnicodeAttribute()
    name = UnicodeAttribute()
    state = UnicodeAttribute()
    params = CompactJSONAttribute(null=True)
    context = CompactJSONAttribute(null=True)
    context_version = NumberAttribute(default=0)
    results = CompactJSONAttribute(null=True)
    parent_id = UnicodeAttribute(null=True)
    parent_tenant = UnicodeAttribute(null=True)
    child_policy = UnicodeAttribute(null=True)
    expected_total = NumberAttribute(null=True)
    processed = NumberAttribute(default=0)
    succeeded = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    batches_total = NumberAttribute(default=0)
    batches_done = NumberAttribute(default=0)
    fetch_done = BooleanAttribute(default=False)
    counter_shards = NumberAttribute(default=0)
    tolerated_failure_count = NumberAttribute(null=True)
    tolerated_failure_percent = NumberAttribute(null=True)
    children_total = NumberAttribute(default=0)
    children_done = NumberAttribute(default=0)
    children_failed = NumberAttribute(default=0)
    children_released = BooleanAttribute(default=False)
    error = UnicodeAttribute(null=True)
    idempotency_key = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)


class IdempotencyRecord(_Item):
    process_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute()


class SnapshotEntry(MapAttribute):
    at = UTCDateTimeAttribute()
    processed = NumberAttribute()


class LiveIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "live-index"
        projection = IncludeProjection(["tenant_id"])

    live_shard = UnicodeAttribute(hash_key=True)
    heartbeat_at = NumberAttribute(range_key=True)


class LiveRecord(_Item):
    tenant_id = UnicodeAttribute()
    live_shard = UnicodeAttribute(null=True)
    heartbeat_at = NumberAttribute(null=True)
    stalled_at = UTCDateTimeAttribute(null=True)
    stalls = NumberAttribute(default=0)
    snapshots = ListAttribute(of=SnapshotEntry, default=list)
    snapshot_at = NumberAttribute(null=True)  # ms of the newest snapshot: the condition that adds the next one

    live_index = LiveIndex()


class BatchRecord(_Item):
    job_type = UnicodeAttribute()
    payload = CompactJSONAttribute()
    job_id = UnicodeAttribute(null=True)
    size = NumberAttribute(null=True)  # records in the batch, when known: a batch that fails for good counts them
    requeues = NumberAttribute(default=0)


class LedgerRecord(_Item):
    job_id = UnicodeAttribute(null=True)
    succeeded = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    at = UTCDateTimeAttribute()


class ShardRecord(_Item):
    processed = NumberAttribute(default=0)
    succeeded = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    batches_done = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute(null=True)


class ErrorRecord(_Item):
    record_id = UnicodeAttribute(null=True)
    message = UnicodeAttribute()
    batch = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()


class ChildLinkRecord(_Item):
    child_id = UnicodeAttribute()
    policy = UnicodeAttribute()
    settled = BooleanAttribute(null=True)


class ParkedRecord(_Item):
    job_type = UnicodeAttribute()
    payload = CompactJSONAttribute()
    batch_key = UnicodeAttribute(null=True)


def _bound(model: type[Model]) -> Any:
    name = get_settings().processes_table
    if not name:
        raise SettingsError("invalid environment: PROCESSES_TABLE is not set (template.yaml gives it)")
    return bind(model, name)


def _connection() -> Any:
    return _bound(ProcessRecord)._get_connection().connection


# --- keys ----------------------------------------------------------------------------------------------------
def tenant_pk(tenant_id: str) -> str:
    return f"tenant#{tenant_id}"


def shard_pk(process_id: str, shard: int) -> str:
    return f"{process_id}#{shard}"


def _shards(process: Process) -> range:
    return range(max(1, process.counter_shards))


def _expiry(now: datetime) -> int:
    return int((now + RETENTION).timestamp())


def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _cancelled_by_condition(exc: TransactWriteError, index: int | None = None) -> bool:
    reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
    if index is not None:
        return len(reasons) > index and reasons[index] == "ConditionalCheckFailed"
    return "ConditionalCheckFailed" in reasons


# --- records <-> domain ----------------------------------------------------------------------------------------
def _domain(record: ProcessRecord, live: LiveRecord | None = None, shards: Iterable[ShardRecord] = ()) -> Process:
    # Counters live on the record, or (counter_shards > 0) on the shards; a sharded process's record gets the
    # final sums when it completes, which is what lists (that read no shards) show.
    counters = Counters(
        int(record.processed), int(record.succeeded), int(record.failed), int(record.skipped), int(record.batches_done)
    )
    shards = list(shards)
    if record.counter_shards and shards:
        counters = Counters()
        for shard in shards:
            counters = counters + Counters(
                int(shard.processed),
                int(shard.succeeded),
                int(shard.failed),
                int(shard.skipped),
                int(shard.batches_done),
            )
    return Process(
        id=record.sk,
        tenant_id=record.tenant_id,
        type=record.type,
        name=record.name,
        state=State(record.state),
        params=record.params or {},
        context=record.context or {},
        results=record.results,
        parent_id=record.parent_id,
        child_policy=ChildPolicy(record.child_policy) if record.child_policy else None,
        expected_total=int(record.expected_total) if record.expected_total is not None else None,
        counters=counters,
        batches_total=int(record.batches_total),
        fetch_done=bool(record.fetch_done),
        counter_shards=int(record.counter_shards),
        tolerance=Tolerance(
            int(record.tolerated_failure_count) if record.tolerated_failure_count is not None else None,
            float(record.tolerated_failure_percent) if record.tolerated_failure_percent is not None else None,
        ),
        children=Children(
            int(record.children_total),
            int(record.children_done),
            int(record.children_failed),
            bool(record.children_released),
        ),
        error=record.error,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        updated_at=record.updated_at,
        heartbeat_at=datetime.fromtimestamp(live.heartbeat_at, UTC) if live and live.heartbeat_at else None,
        stalled_at=live.stalled_at if live else None,
        snapshots=tuple(Snapshot(s.at, int(s.processed)) for s in (live.snapshots or [])) if live else (),
    )


def new_record(process: Process, *, parent_tenant: str | None = None, idempotency_key: str | None = None) -> Any:
    model = _bound(ProcessRecord)
    return model(
        tenant_pk(process.tenant_id),
        process.id,
        tenant_id=process.tenant_id,
        type=process.type,
        name=process.name,
        state=process.state.value,
        params=process.params,
        context=process.context,
        context_version=0,
        parent_id=process.parent_id,
        parent_tenant=parent_tenant,
        child_policy=process.child_policy.value if process.child_policy else None,
        expected_total=process.expected_total,
        counter_shards=process.counter_shards,
        tolerated_failure_count=process.tolerance.count,
        tolerated_failure_percent=process.tolerance.percent,
        idempotency_key=idempotency_key,
        created_at=process.created_at,
        updated_at=process.created_at,
        processed=0,
        succeeded=0,
        failed=0,
        skipped=0,
        batches_total=0,
        batches_done=0,
        fetch_done=False,
        children_total=0,
        children_done=0,
        children_failed=0,
        children_released=False,
    )


# --- create and read -----------------------------------------------------------------------------------------
def insert(process: Process, *, idempotency: tuple[str, str, str] | None = None) -> bool:
    """Store a new (pending) process; with an idempotency claim (key, fingerprint, raw key) both or neither.
    False when the claim is taken by another request."""
    record = new_record(process, idempotency_key=idempotency[2] if idempotency else None)
    model = type(record)
    now = utcnow()
    live = _new_live(process, now)
    if idempotency is None:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(record, condition=model.sk.does_not_exist())
            tx.save(live)
        return True
    key, fingerprint, _ = idempotency
    claims = _bound(IdempotencyRecord)
    claim = claims(
        tenant_pk(process.tenant_id),
        key,
        process_id=process.id,
        fingerprint=fingerprint,
        expires_at=int((now + IDEMPOTENCY_WINDOW).timestamp()),
    )
    free = claims.sk.does_not_exist() | (claims.expires_at <= int(now.timestamp()))
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(claim, condition=free)
            tx.save(record, condition=model.sk.does_not_exist())
            tx.save(live)
    except TransactWriteError as exc:
        if _cancelled_by_condition(exc):
            return False
        raise
    return True


def _new_live(process: Process, now: datetime) -> Any:
    """The liveness item: in the live index from creation, so even a process whose first job never ran is found."""
    return _bound(LiveRecord)(
        process.id,
        "live",
        tenant_id=process.tenant_id,
        live_shard=str(shard_of(process.id, LIVE_SHARDS)),
        heartbeat_at=int(now.timestamp()),
        stalls=0,
        snapshots=[],
    )


def idempotency_key(raw: str) -> str:
    return "idem#" + hashlib.sha256(raw.encode()).hexdigest()


def find_idempotency(tenant_id: str, key: str) -> tuple[str, str] | None:
    """(process id, fingerprint) of a live claim, or None."""
    try:
        claim = _bound(IdempotencyRecord).get(tenant_pk(tenant_id), key, consistent_read=True)
    except DoesNotExist:
        return None
    if claim.expires_at is not None and claim.expires_at <= utcnow().timestamp():
        return None
    return claim.process_id, claim.fingerprint


def _record(tenant_id: str, process_id: str, *, consistent: bool) -> ProcessRecord | None:
    if not process_id.startswith(PREFIX) or "#" in process_id:
        return None
    try:
        record = _bound(ProcessRecord).get(tenant_pk(tenant_id), process_id, consistent_read=consistent)
    except DoesNotExist:
        return None
    if record.expires_at is not None and record.expires_at <= utcnow().timestamp():
        return None
    return record


def get(tenant_id: str, process_id: str, *, consistent: bool = False, live: bool = True) -> Process | None:
    """The process with its counters summed over its shards (and its liveness item when `live`)."""
    record = _record(tenant_id, process_id, consistent=consistent)
    if record is None:
        return None
    shards: list[ShardRecord] = []
    if record.counter_shards:
        keys = [(shard_pk(process_id, k), "counters") for k in range(int(record.counter_shards))]
        shards = list(_bound(ShardRecord).batch_get(keys, consistent_read=consistent))
    live_record = None
    if live:
        try:
            live_record = _bound(LiveRecord).get(process_id, "live", consistent_read=consistent)
        except DoesNotExist:
            live_record = None
    return _domain(record, live_record, shards)


def counters_changed_at(process: Process) -> datetime | None:
    """When the counters last changed (the `as_of` of rate and ETA): the newest of the record and its shards."""
    if not process.counter_shards:
        return process.updated_at
    keys = [(shard_pk(process.id, k), "counters") for k in range(process.counter_shards)]
    stamps = [s.updated_at for s in _bound(ShardRecord).batch_get(keys) if s.updated_at]
    return max([*stamps, *([process.updated_at] if process.updated_at else [])], default=None)


def query(
    tenant_id: str, *, state: str | None, process_type: str | None, limit: int, after: str | None
) -> tuple[list[Process], str | None]:
    """A tenant's processes newest first (counters of sharded ones are not summed here: read one to see them)."""
    model = _bound(ProcessRecord)
    condition = None
    if state:
        condition = model.state == state
    if process_type:
        condition = (model.type == process_type) if condition is None else condition & (model.type == process_type)
    results = model.query(
        tenant_pk(tenant_id),
        model.sk.startswith(PREFIX),
        filter_condition=condition,
        scan_index_forward=False,
        page_size=max(limit, 100),
        last_evaluated_key={"pk": {"S": tenant_pk(tenant_id)}, "sk": {"S": after}} if after else None,
    )
    records, last = filtered_page(results, model, limit=limit)
    return [_domain(r) for r in records], (last["sk"]["S"] if last else None)


# --- state transitions ---------------------------------------------------------------------------------------
def _update(record: Model, actions: list[Any], condition: Any) -> bool:
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def _transition(process: Process, target: State, actions: list[Any], extra_condition: Any = None) -> bool:
    model = _bound(ProcessRecord)
    now = utcnow()
    condition = model.state.is_in(*[s.value for s in allowed_from(target)])
    if extra_condition is not None:
        condition &= extra_condition
    actions = [model.state.set(target.value), model.updated_at.set(now), *actions]
    if target.finished:
        actions += [model.finished_at.set(now), model.expires_at.set(_expiry(now))]
    ok = _update(model(tenant_pk(process.tenant_id), process.id), actions, condition)
    if ok and target.finished:
        _retire_live(process, now)
    return ok


def begin(process: Process) -> bool:
    """pending -> running (the process's first job started)."""
    model = _bound(ProcessRecord)
    now = utcnow()
    return _update(
        model(tenant_pk(process.tenant_id), process.id),
        [model.state.set(State.RUNNING.value), model.started_at.set(now), model.updated_at.set(now)],
        model.state == State.PENDING.value,
    )


def pause(process: Process) -> bool:
    return _transition(process, State.PAUSED, [])


def resume(process: Process) -> bool:
    """paused -> running (a pending process is begun by its first job, not resumed)."""
    model = _bound(ProcessRecord)
    return _transition(process, State.RUNNING, [], model.state == State.PAUSED.value)


def cancel(process: Process) -> bool:
    return _transition(process, State.CANCELLED, [])


def fail(process: Process, reason: str) -> bool:
    model = _bound(ProcessRecord)
    return _transition(process, State.FAILED, [model.error.set(reason[:1000])])


def complete(process: Process, target: State, results: dict[str, Any] | None = None) -> bool:
    """The completion gate: running -> completed / completed_with_errors / failed, exactly once.

    Conditional on fetch_done, on batches_total being the one the caller counted up to, on the children having
    settled, and (counters on the record) on batches_done = batches_total — so it cannot fire early, and of
    any number of concurrent "last" batches only one write succeeds."""
    model = _bound(ProcessRecord)
    condition = (
        (model.state == State.RUNNING.value)
        & (model.fetch_done == True)  # noqa: E712 - a DynamoDB condition, not a Python comparison
        & (model.batches_total == process.batches_total)
        & ((model.children_done == model.children_total) | (model.children_released == True))  # noqa: E712
    )
    actions = []
    if not process.counter_shards:
        condition &= model.batches_done == model.batches_total
    else:  # final sums onto the record (they cannot change any more: every batch is committed)
        c = process.counters
        actions += [
            model.processed.set(c.processed),
            model.succeeded.set(c.succeeded),
            model.failed.set(c.failed),
            model.skipped.set(c.skipped),
            model.batches_done.set(c.batches_done),
        ]
    if results is not None:
        actions.append(model.results.set(results))
    if target is State.FAILED:
        actions.append(model.error.set("failures exceeded the tolerance"))
    return _transition(process, target, actions, condition)


def set_fetch_done(process: Process, expected_total: int | None = None) -> bool:
    """No more batches will be declared (idempotent); optionally the item total, now known."""
    model = _bound(ProcessRecord)
    actions = [model.fetch_done.set(True), model.updated_at.set(utcnow())]
    if expected_total is not None:
        actions.append(model.expected_total.set(expected_total))
    return _update(model(tenant_pk(process.tenant_id), process.id), actions, model.sk.exists())


def update_context(process: Process, values: dict[str, Any], *, attempts: int = 5) -> dict[str, Any] | None:
    """Merge `values` into the context (optimistic: conditional on the version read). The merged context, or
    None if the process is gone."""
    model = _bound(ProcessRecord)
    for _ in range(attempts):
        record = _record(process.tenant_id, process.id, consistent=True)
        if record is None:
            return None
        merged = {**(record.context or {}), **values}
        if _update(
            model(tenant_pk(process.tenant_id), process.id),
            [model.context.set(merged), model.context_version.add(1)],
            model.context_version == record.context_version,
        ):
            return merged
    raise RuntimeError("the process context kept changing under this update")


def set_results(process: Process, results: dict[str, Any]) -> bool:
    model = _bound(ProcessRecord)
    return _update(model(tenant_pk(process.tenant_id), process.id), [model.results.set(results)], model.sk.exists())


# --- batches: declare, commit outcomes -------------------------------------------------------------------------
BatchSpec = tuple[str, str, dict[str, Any], int | None]  # key, job type, payload, size


def declare_batches(process: Process, batches: list[BatchSpec]) -> list[str]:
    """Declare batches (key, job type, payload, size) and add them to batches_total, each exactly once: a repeated
    declaration (a retried fetch) changes nothing. Returns the keys declared now."""
    if not batches:
        return []
    model, batch_model = _bound(ProcessRecord), _bound(BatchRecord)

    def commit(chunk: list[BatchSpec]) -> bool:
        now = utcnow()
        try:
            with TransactWrite(connection=_connection()) as tx:
                for key, job_type, payload, size in chunk:
                    tx.save(
                        batch_model(process.id, f"b#{key}", job_type=job_type, payload=payload, size=size, requeues=0),
                        condition=batch_model.sk.does_not_exist(),
                    )
                tx.update(
                    model(tenant_pk(process.tenant_id), process.id),
                    actions=[model.batches_total.add(len(chunk)), model.updated_at.set(now)],
                    condition=model.sk.exists() & (model.fetch_done == False),  # noqa: E712
                )
        except TransactWriteError as exc:
            if _cancelled_by_condition(exc):
                return False
            raise
        return True

    declared: list[str] = []
    for start in range(0, len(batches), 99):  # a transaction holds at most 100 items
        chunk = batches[start : start + 99]
        if commit(chunk):
            declared += [spec[0] for spec in chunk]
            continue
        for one in chunk:  # some were declared before (a retry): the rest one at a time
            if commit([one]):
                declared.append(one[0])
    return declared


def set_batch_job(process_id: str, batch_key: str, job_id: str, *, previous: str | None = None) -> bool:
    model = _bound(BatchRecord)
    condition = model.sk.exists()
    condition &= model.job_id.does_not_exist() if previous is None else model.job_id == previous
    actions = [model.job_id.set(job_id)] + ([model.requeues.add(1)] if previous else [])
    return _update(model(process_id, f"b#{batch_key}"), actions, condition)


def record_batch(process: Process, batch_key: str, outcome: Outcome, *, job_id: str | None = None) -> bool:
    """Commit a batch's outcome once: ONE transaction puts the ledger item (attribute_not_exists) and ADDs the
    counters and batches_done (on the record, or on the batch's shard), plus its first error samples. A
    redelivered or retried batch finds its ledger item: the whole transaction is cancelled, nothing counts
    twice. Returns False for such a duplicate. Nothing here reads a counter."""
    now = utcnow()
    shard = shard_of(batch_key, process.counter_shards)
    pk = shard_pk(process.id, shard)
    ledger, errors = _bound(LedgerRecord), _bound(ErrorRecord)
    adds: list[Any]
    if process.counter_shards:
        shards = _bound(ShardRecord)
        target: Model = shards(pk, "counters")
        adds = [shards.updated_at.set(now)]
        fields = shards
        condition = None
    else:
        model = _bound(ProcessRecord)
        target = model(tenant_pk(process.tenant_id), process.id)
        adds = [model.updated_at.set(now)]
        fields = model
        condition = model.sk.exists()
    adds += [
        fields.processed.add(outcome.processed),
        fields.succeeded.add(outcome.succeeded),
        fields.failed.add(outcome.failed),
        fields.skipped.add(outcome.skipped),
        fields.batches_done.add(1),
    ]
    expiry = _expiry(now + timedelta(days=365))  # the ledger outlives any process (it is tiny)
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(
                ledger(
                    pk,
                    f"d#{batch_key}",
                    job_id=job_id,
                    succeeded=outcome.succeeded,
                    failed=outcome.failed,
                    skipped=outcome.skipped,
                    at=now,
                    expires_at=expiry,
                ),
                condition=ledger.sk.does_not_exist(),
            )
            tx.update(target, actions=adds, condition=condition)
            for sample in outcome.errors[:ERRORS_PER_BATCH]:
                tx.save(
                    errors(
                        pk,
                        f"e#{ulid()}",
                        record_id=sample.record_id,
                        message=sample.message[:500],
                        batch=batch_key,
                        at=sample.at or now,
                        expires_at=expiry,
                    )
                )
    except TransactWriteError as exc:
        if _cancelled_by_condition(exc, 0):
            return False
        raise
    return True


def ledger_keys(process: Process) -> set[str]:
    """Keys of every batch whose outcome is committed."""
    ledger = _bound(LedgerRecord)
    found: set[str] = set()
    for shard in _shards(process):
        for item in ledger.query(shard_pk(process.id, shard), ledger.sk.startswith("d#"), attributes_to_get=["sk"]):
            found.add(item.sk[2:])
    return found


def declared_batches(process: Process) -> Iterator[tuple[str, str, dict[str, Any], str | None]]:
    """(key, job type, payload, job id) of every declared batch."""
    batch = _bound(BatchRecord)
    for item in batch.query(process.id, batch.sk.startswith("b#")):
        yield item.sk[2:], item.job_type, item.payload, item.job_id


def batch_size(process_id: str, batch_key: str) -> int | None:
    try:
        item = _bound(BatchRecord).get(process_id, f"b#{batch_key}")
    except DoesNotExist:
        return None
    return int(item.size) if item.size is not None else None


def error_samples(process: Process, limit: int = MAX_ERROR_SAMPLES) -> list[ErrorSample]:
    """The newest error samples over all shards."""
    errors = _bound(ErrorRecord)
    found: list[tuple[str, ErrorSample]] = []
    for shard in _shards(process):
        for item in errors.query(
            shard_pk(process.id, shard), errors.sk.startswith("e#"), scan_index_forward=False, limit=limit
        ):
            found.append((item.sk, ErrorSample(item.record_id, item.message, item.at)))
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [sample for _, sample in found[:limit]]


def add_error_sample(process: Process, sample: ErrorSample) -> None:
    """An error that is not a batch's (a child's failure), kept with the others."""
    now = utcnow()
    _bound(ErrorRecord)(
        shard_pk(process.id, 0),
        f"e#{ulid()}",
        record_id=sample.record_id,
        message=sample.message[:500],
        at=sample.at or now,
        expires_at=_expiry(now),
    ).save()


# --- liveness ----------------------------------------------------------------------------------------------------
def heartbeat(process: Process, now: datetime, processed: int) -> bool:
    """Running and alive: bump heartbeat_at and add a rate snapshot when the last one is at least 10 s old
    (conditional on the newest snapshot read, so concurrent heartbeats add one, not two). `stalled_at` stays: it
    is the last time the sweep found the process silent, history a reader may want after it recovered."""
    live = _bound(LiveRecord)
    record = live(process.id, "live")
    alive = [live.heartbeat_at.set(int(now.timestamp()))]
    current = tuple(process.snapshots)
    snaps = next_snapshots(current, Snapshot(now, processed))
    if snaps is not None:
        seen = live.snapshot_at.does_not_exist()
        if current:
            seen = live.snapshot_at == _ms(current[-1].at)
        added = [
            live.snapshots.set([SnapshotEntry(at=s.at, processed=s.processed) for s in snaps]),
            live.snapshot_at.set(_ms(now)),
        ]
        if _update(record, alive + added, live.live_shard.exists() & seen):
            return True
    return _update(record, alive, live.live_shard.exists())


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _retire_live(process: Process, now: datetime) -> None:
    """A finished process leaves the live index (the sweep would drop it anyway)."""
    live = _bound(LiveRecord)
    _update(
        live(process.id, "live"),
        [live.live_shard.remove(), live.expires_at.set(_expiry(now))],
        live.sk.exists(),
    )


def retire_live(process: Process) -> None:
    _retire_live(process, utcnow())


def silent_since(cutoff: datetime) -> Iterator[tuple[str, str]]:
    """(tenant id, process id) of every process in the live index whose last heartbeat is before `cutoff`."""
    index = _bound(LiveRecord).live_index
    for shard in range(LIVE_SHARDS):
        for item in index.query(str(shard), LiveIndex.heartbeat_at < int(cutoff.timestamp())):
            yield item.tenant_id, item.pk


def mark_stalled(process: Process, heartbeat_seen: datetime | None, now: datetime) -> bool:
    """Stamp a stall once per silence (conditional on the heartbeat seen); the heartbeat moves to now so the
    next sweep looks again only after another full silence."""
    live = _bound(LiveRecord)
    condition = live.live_shard.exists()
    if heartbeat_seen is not None:
        condition &= live.heartbeat_at == int(heartbeat_seen.timestamp())
    return _update(
        live(process.id, "live"),
        [live.stalled_at.set(now), live.stalls.add(1), live.heartbeat_at.set(int(now.timestamp()))],
        condition,
    )


# --- children ----------------------------------------------------------------------------------------------------
def insert_child(parent: Process, child: Process, policy: ChildPolicy) -> bool:
    """The child record, the parent's link to it and children_total + 1, all or nothing. False if that child
    exists already (a retried start) or the parent has finished."""
    model, links = _bound(ProcessRecord), _bound(ChildLinkRecord)
    record = new_record(child, parent_tenant=parent.tenant_id)
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(record, condition=model.sk.does_not_exist())
            tx.save(_new_live(child, utcnow()))
            tx.save(links(parent.id, f"c#{child.id}", child_id=child.id, policy=policy.value))
            tx.update(
                model(tenant_pk(parent.tenant_id), parent.id),
                actions=[model.children_total.add(1), model.updated_at.set(utcnow())],
                condition=model.state.is_in(State.PENDING.value, State.RUNNING.value, State.PAUSED.value),
            )
    except TransactWriteError as exc:
        if _cancelled_by_condition(exc):
            return False
        raise
    return True


def settle_child(parent_tenant: str, parent_id: str, child_id: str, *, failed: bool, release: bool) -> bool:
    """Count a finished child on its parent exactly once (the link's `settled` flag and the ADD commit together)."""
    model, links = _bound(ProcessRecord), _bound(ChildLinkRecord)
    actions = [model.children_done.add(1), model.updated_at.set(utcnow())]
    if failed:
        actions.append(model.children_failed.add(1))
    if release:
        actions.append(model.children_released.set(True))
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.update(
                links(parent_id, f"c#{child_id}"),
                actions=[links.settled.set(True)],
                condition=links.sk.exists() & links.settled.does_not_exist(),
            )
            tx.update(model(tenant_pk(parent_tenant), parent_id), actions=actions, condition=model.sk.exists())
    except TransactWriteError as exc:
        if _cancelled_by_condition(exc):
            return False
        raise
    return True


def child_links(process: Process) -> list[tuple[str, ChildPolicy, bool]]:
    links = _bound(ChildLinkRecord)
    return [
        (item.child_id, ChildPolicy(item.policy), bool(item.settled))
        for item in links.query(process.id, links.sk.startswith("c#"))
    ]


def child_policy_of(parent_id: str, child_id: str) -> ChildPolicy | None:
    try:
        link = _bound(ChildLinkRecord).get(parent_id, f"c#{child_id}", consistent_read=True)
    except DoesNotExist:
        return None
    return ChildPolicy(link.policy)


def many(tenant_id: str, process_ids: list[str]) -> list[Process]:
    model = _bound(ProcessRecord)
    keys = [(tenant_pk(tenant_id), pid) for pid in process_ids]
    return [_domain(r) for r in model.batch_get(keys)] if keys else []


# --- parked jobs (paused processes) -------------------------------------------------------------------------------
def park(process: Process, job_id: str, job_type: str, payload: dict[str, Any], batch_key: str | None) -> bool:
    parked = _bound(ParkedRecord)
    try:
        parked(process.id, f"p#{job_id}", job_type=job_type, payload=payload, batch_key=batch_key).save(
            condition=parked.sk.does_not_exist()
        )
    except PutError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def parked_jobs(process: Process) -> list[tuple[str, str, dict[str, Any], str | None]]:
    parked = _bound(ParkedRecord)
    return [
        (item.sk[2:], item.job_type, item.payload, item.batch_key)
        for item in parked.query(process.id, parked.sk.startswith("p#"))
    ]


def unpark(process: Process, job_id: str) -> None:
    _bound(ParkedRecord)(process.id, f"p#{job_id}").delete()
