"""Job use cases: enqueue, read, list, cancel, retry. Every function takes the caller's tenant; nothing crosses
tenants. Other capabilities enqueue through here (via conveyor.jobs), never by writing the jobs table."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from conveyor.jobs import registry, repository
from conveyor.jobs.domain import (
    FINISHED,
    JOB_PREFIX,
    MAX_DELAY_SECONDS,
    BulkOutcome,
    Enqueued,
    IdempotencyClaim,
    Job,
    JobBrief,
    JobState,
    NewJob,
    Page,
    TimelineEvent,
)
from conveyor.platform import correlation
from conveyor.platform.auth.keys import Principal
from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import decode_cursor, encode_cursor, expires_at, stored_size
from conveyor.platform.errors import (
    Conflict,
    ConveyorError,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from conveyor.platform.ids import derived_ulid, new_id
from conveyor.platform.settings import get_settings

IDEMPOTENCY_WINDOW = timedelta(hours=48)  # promised: at least 24 h
# A job item holds its payload, a bounded timeline, its result and a few small fields; DynamoDB's item limit
# is 400 KB, so the payload (stored as compact UTF-8 JSON, never larger than the body that carried it) gets 256 KB.
MAX_PAYLOAD_BYTES = 256 * 1024


def enqueue(
    tenant_id: str,
    request: NewJob,
    idempotency_key: str | None = None,
    *,
    queue: str | None = None,
    process_id: str | None = None,
    batch_key: str | None = None,
    caller: Principal | None = None,
    job_id: str | None = None,
) -> tuple[Job, bool]:
    """Accept a job. Returns (job, created); a repeated Idempotency-Key returns the first job, created=False.

    `caller` (the public API) must hold the type's write scope as well (registry.Scopes); domain code that
    enqueues on its own behalf passes none. `queue` (domain code only, never the public API) puts the job on
    another family's queue than its type's default, e.g. reminder notifications on `reminders` so a burst of
    them never delays ad-hoc ones. `process_id` / `batch_key` (domain code only) make it a job of a process
    (see registry.ProcessPort). `job_id` (domain code only, instead of an Idempotency-Key; from `derived_job_id`)
    is the id of the one job for what it names: the job is stored only if no job has that id, and a repeat returns
    the first, created=False. One conditional put, where a key costs a transaction with its claim.
    """
    if job_id is not None and idempotency_key is not None:
        raise ValueError("give an idempotency key or a derived job id, not both")
    prepared = _prepare(tenant_id, request, idempotency_key, queue, process_id, batch_key, caller, job_id=job_id)
    if isinstance(prepared, Job):
        return prepared, False
    if job_id is not None:
        return _store_once(prepared.job)
    return _store(prepared)


def derived_job_id(seed: str, at: datetime) -> str:
    """The job id of the one job for `seed` (e.g. a reminder's firing), sorting at `at` among the tenant's jobs."""
    return JOB_PREFIX + derived_ulid(seed, int(at.timestamp() * 1000))


MAX_BATCH = 100


def enqueue_many(
    tenant_id: str, items: Sequence[tuple[NewJob, str | None]], *, caller: Principal | None = None
) -> list[Enqueued]:
    """Accept up to MAX_BATCH jobs, each (request, its own Idempotency-Key or None), with exactly the single
    enqueue's checks (type, scope, payload, replay): one outcome per item, in order; one bad item fails only itself.

    Items with a key are stored as a single enqueue stores them (the key's claim and the job in one transaction,
    many jobs to a transaction): a key another request took meanwhile is answered as the single enqueue answers
    it (that request's job, or a Conflict), and a key repeated within the batch is checked again once its first
    item is stored. Items without one need no condition (a job id is a fresh ULID) and are written 25 to a
    BatchWriteItem; an item DynamoDB still left unprocessed after the retries is an `Unavailable` outcome (not
    stored: the caller may send it again).
    """
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} jobs per batch")
    outcomes: dict[int, Enqueued] = {}
    unkeyed: dict[int, Job] = {}
    keyed: dict[int, _Prepared] = {}
    again: list[int] = []  # a key an earlier item of this batch holds: checked once that one is stored

    def prepare(index: int, *, first_pass: bool) -> None:
        request, idempotency_key = items[index]
        try:
            prepared = _prepare(
                tenant_id, request, idempotency_key, None, None, None, caller, claims if first_pass else None
            )
            if isinstance(prepared, Job):
                outcomes[index] = Enqueued(prepared, created=False)
            elif prepared.claim is None:
                unkeyed[index] = prepared.job
            elif not first_pass:  # stored alone, as the single enqueue stores it
                outcomes[index] = Enqueued(*_store(prepared))
            elif any(p.claim and p.claim.key == prepared.claim.key for p in keyed.values()):
                again.append(index)
            else:
                keyed[index] = prepared
        except ConveyorError as exc:
            outcomes[index] = Enqueued(error=exc)

    # Nothing is written before every item is prepared: the keys' claims can be read at once, as each would be.
    claims = repository.find_idempotencies(tenant_id, [_idempotency_item(key) for _, key in items if key])
    for index in range(len(items)):
        prepare(index, first_pass=True)
    taken = repository.insert_claimed([(p.job, p.claim, p.orphaned) for p in keyed.values() if p.claim])
    for index, prepared in keyed.items():
        try:
            outcomes[index] = Enqueued(*(_lost(prepared) if prepared.job.id in taken else (prepared.job, True)))
        except ConveyorError as exc:
            outcomes[index] = Enqueued(error=exc)
    for index in again:  # its key's first item is stored now: this one replays it (or conflicts with it)
        prepare(index, first_pass=False)
    unwritten = repository.insert_many(list(unkeyed.values()))
    for index, job in unkeyed.items():
        if job.id in unwritten:
            outcomes[index] = Enqueued(error=Unavailable("DynamoDB throttled this job's write; send it again"))
        else:
            outcomes[index] = Enqueued(job, created=True)
    return [outcomes[index] for index in range(len(items))]


@dataclass(frozen=True)
class _Prepared:
    """A new job that passed every check, with the Idempotency-Key claim to store beside it (if any)."""

    job: Job
    claim: IdempotencyClaim | None = None
    orphaned: str | None = None  # the job id of a claim whose job no longer exists (deleted, aged out)


def _prepare(
    tenant_id: str,
    request: NewJob,
    idempotency_key: str | None,
    queue: str | None,
    process_id: str | None,
    batch_key: str | None,
    caller: Principal | None,
    claims: Mapping[str, IdempotencyClaim] | None = None,
    *,
    job_id: str | None = None,
) -> Job | _Prepared:
    """The checks of an enqueue (type, scope, payload, queue, replay), and the job to store: the earlier job when
    the Idempotency-Key already made one with this request (Conflict when with another)."""
    kind = registry.require(request.type)
    _require_scope(caller, kind.scopes.write, kind.name)
    payload = _validated_payload(kind, request.payload)
    queue = queue or kind.queue
    get_settings().queue_url(queue)  # a job type whose queue is not deployed is a deployment bug: fail loudly

    key = fingerprint = ""
    orphaned: str | None = None
    if idempotency_key is not None:
        key = _idempotency_item(idempotency_key)
        fingerprint = request.fingerprint()
        existing, orphaned = _replay(tenant_id, key, fingerprint, claims)
        if existing is not None:
            return existing

    now = utcnow()
    run_at = request.run_at or (now + timedelta(seconds=request.delay_seconds) if request.delay_seconds else None)
    if run_at is not None and run_at <= now:
        run_at = None
    far = run_at is not None and (run_at - now).total_seconds() > MAX_DELAY_SECONDS
    # Far ahead: `scheduled`, in the due index for the sweep. Otherwise `queued`: the dispatcher sends it,
    # with DelaySeconds if run_at is near.
    state = JobState.SCHEDULED if far else JobState.QUEUED
    job = Job(
        tenant_id=tenant_id,
        id=job_id or new_id("job"),
        type=kind.name,
        queue=queue,
        state=state,
        payload=payload,
        max_attempts=request.max_attempts or kind.retry.max_attempts,
        created_at=now,
        updated_at=now,
        run_at=run_at,
        idempotency_key=idempotency_key,
        process_id=process_id,
        batch_key=batch_key,
        correlation_id=correlation.current(),
        timeline=(TimelineEvent(state, now),),
    )
    if idempotency_key is None:
        return _Prepared(job)
    claim = IdempotencyClaim(tenant_id, key, job.id, fingerprint, expires_at(now, IDEMPOTENCY_WINDOW))
    return _Prepared(job, claim, orphaned)


def _store(prepared: _Prepared) -> tuple[Job, bool]:
    """Store a prepared job (with its claim, both or neither): (job, True), or as `_lost` when a concurrent
    request with the same key took the claim first."""
    if not repository.insert(prepared.job, idempotency=prepared.claim, replacing=prepared.orphaned):
        return _lost(prepared)
    return prepared.job, True


def _store_once(job: Job) -> tuple[Job, bool]:
    """Store a job whose id is derived (see enqueue): (job, True), or (the job that already has the id, False)."""
    if repository.insert(job):
        return job, True
    existing = repository.get(job.tenant_id, job.id, consistent=True, include_expired=True)
    if existing is None:  # deleted between the put and the read
        raise Conflict("the job for this request was deleted a moment ago; retry shortly")
    return existing, False


def _lost(prepared: _Prepared) -> tuple[Job, bool]:
    """A concurrent request with the same key took the claim first: answer with the winner's job (Conflict if
    it asked for another job, or its job is not stored yet)."""
    claim = prepared.claim
    assert claim is not None  # noqa: S101 - only a claim's condition can fail
    existing, _ = _replay(prepared.job.tenant_id, claim.key, claim.fingerprint)
    if existing is None:
        raise Conflict("a request with this Idempotency-Key is in progress; retry shortly")
    return existing, False


def _validated_payload(kind: registry.JobType, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        model = kind.payload_model.model_validate(payload)
    except ValidationError as exc:
        fields = [
            {"loc": ["payload", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput(f"invalid payload for job type {kind.name!r}", fields=fields) from None
    dumped = model.model_dump(mode="json", exclude_unset=True)
    size = stored_size(dumped)
    if size > MAX_PAYLOAD_BYTES:  # what is stored is limited, not only what is received
        raise PayloadTooLarge(f"the payload takes {size} bytes stored; the limit is {MAX_PAYLOAD_BYTES}")
    return dumped


def _replay(
    tenant_id: str, key: str, fingerprint: str, claims: Mapping[str, IdempotencyClaim] | None = None
) -> tuple[Job | None, str | None]:
    """(the job this key already made, None), or (None, its job id) when the claim outlived its job (the job
    was deleted or aged out): such a claim holds nothing, and the new request may take it over. `claims`: the
    live claims already read for a batch (its keys read at once), else the key's is read now."""
    claim = claims.get(key) if claims is not None else repository.find_idempotency(tenant_id, key)
    if claim is None:
        return None, None
    job = repository.get(tenant_id, claim.job_id, consistent=True)
    if job is None:
        return None, claim.job_id
    if claim.fingerprint != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request", details={"job_id": claim.job_id}
        )
    return job, None


def _require_scope(caller: Principal | None, scope: str | None, job_type: str) -> None:
    if caller is not None and scope is not None and not caller.allows(scope):
        raise Forbidden(
            f"jobs of type {job_type!r} need the {scope!r} scope as well", details={"required_scope": scope}
        )


def _scopes(job_type: str) -> registry.Scopes:
    kind = registry.get(job_type)
    return kind.scopes if kind else registry.Scopes()


def get(tenant_id: str, job_id: str, *, caller: Principal | None = None, write: bool = False) -> Job:
    """A tenant's job. With `caller` (the public API), it must also hold the type's read (or `write`) scope."""
    job = repository.get(tenant_id, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    scopes = _scopes(job.type)
    _require_scope(caller, scopes.write if write else scopes.read, job.type)
    return job


def list_jobs(
    tenant_id: str,
    *,
    state: str | None,
    job_type: str | None,
    limit: int,
    cursor: str | None,
    queue: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    oldest_first: bool = False,
    caller: Principal | None = None,
) -> tuple[list[Job], str | None]:
    """A page of the tenant's jobs, newest (or oldest) first, and the cursor of the next page (None: the last).
    A caller sees only the types whose read scope it holds: asking for one it lacks is refused, and the others
    are left out of an unfiltered listing."""
    if created_from and created_before and created_before <= created_from:
        raise InvalidInput("created_before must be after created_from")
    hidden: list[str] = []
    if caller is not None:
        if job_type is not None:
            _require_scope(caller, _scopes(job_type).read, job_type)
        hidden = registry.unreadable_by(caller.allows)
    items, last = repository.query(
        tenant_id,
        state=state,
        job_type=job_type,
        limit=limit,
        after=after(cursor),
        exclude_types=hidden,
        queue=queue,
        created_from=created_from,
        created_before=created_before,
        oldest_first=oldest_first,
    )
    return items, next_cursor(last)


def find(tenant_id: str, text: str, *, caller: Principal | None = None) -> Job | None:
    """Search: the tenant's job with this id, or the job its Idempotency-Key (as the client sent it) created.
    With `caller`, a job of a type it may not read is not found."""
    text = text.strip()
    if not text or len(text) > 255:
        return None
    job = repository.get(tenant_id, text) if text.startswith(JOB_PREFIX) else None
    if job is None:
        claim = repository.find_idempotency(tenant_id, _idempotency_item(text))
        job = repository.get(tenant_id, claim.job_id) if claim else None
    if job is not None and caller is not None:
        read = _scopes(job.type).read
        if read is not None and not caller.allows(read):
            return None
    return job


def _idempotency_item(idempotency_key: str) -> str:
    return "idem#" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def next_cursor(last_job_id: str | None) -> str | None:
    """The opaque cursor that continues a walk over a tenant's jobs after `last_job_id`."""
    return encode_cursor(sk=last_job_id) if last_job_id else None


def after(cursor: str | None) -> str | None:
    """The last job id a cursor from `next_cursor` stands for (InvalidCursor if it is not one)."""
    fields = decode_cursor(cursor, {"sk": JOB_PREFIX})
    return fields["sk"] if fields else None


def cancel(tenant_id: str, job_id: str, *, caller: Principal | None = None) -> Job:
    job = get(tenant_id, job_id, caller=caller, write=True)
    cancelled = repository.cancel(job)
    if cancelled is None:
        current = repository.get(tenant_id, job_id, consistent=True) or job
        raise InvalidState(
            f"job is {current.state}; only scheduled, queued or retrying jobs can be cancelled",
            details={"state": current.state},
        )
    return cancelled


def retry(tenant_id: str, job_id: str, *, caller: Principal | None = None) -> Job:
    job = get(tenant_id, job_id, caller=caller, write=True)
    requeued = repository.requeue(job)
    if requeued is None:
        raise InvalidState(
            f"job is {job.state}; only failed or cancelled jobs can be retried", details={"state": job.state}
        )
    return requeued


def run_now(tenant_id: str, job_id: str, *, caller: Principal | None = None) -> Job:
    """A scheduled job goes to its queue now instead of at run_at (the scheduler's release, done early)."""
    job = get(tenant_id, job_id, caller=caller, write=True)
    released = repository.run_early(job) if job.state == JobState.SCHEDULED else None
    if released is None:
        current = repository.get(tenant_id, job_id, consistent=True) or job
        raise InvalidState(
            f"job is {current.state}; only scheduled jobs can be run now", details={"state": current.state}
        )
    return released


def delete(tenant_id: str, job_id: str, *, caller: Principal | None = None) -> None:
    """Delete a finished job (completed, failed or cancelled), only if it did not change state meanwhile."""
    job = get(tenant_id, job_id, caller=caller, write=True)
    if not job.finished or not repository.delete_finished(job):
        raise InvalidState(
            f"job is {job.state}; only completed, failed or cancelled jobs can be deleted",
            details={"state": job.state},
        )


# --- bounded bulk operations (the admin API's) ------------------------------------------------------------
BULK_PAGE = 500
MAX_EXAMINED = 2_000  # jobs read per bulk call, whatever matches: a call cannot time out


def retry_failed(
    tenant_id: str,
    *,
    job_type: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
    queue: str | None = None,
) -> BulkOutcome:
    """Requeue the tenant's failed jobs (of one type or queue, created since an instant), newest first, bounded."""

    def page(after: str | None) -> Page[Job]:
        return repository.walk(
            tenant_id,
            state=JobState.FAILED,
            job_type=job_type,
            queue=queue,
            created_from=since,
            after=after,
            max_examined=BULK_PAGE,
        )

    return _bulk(page, lambda job: repository.requeue(job) is not None, limit=limit, cursor=cursor)


def delete_finished(
    tenant_id: str,
    *,
    state: str,
    before: datetime,
    limit: int,
    cursor: str | None,
    queue: str | None = None,
    job_type: str | None = None,
) -> BulkOutcome:
    """Delete the tenant's jobs that finished in `state` before an instant (of one queue or type), newest first,
    bounded."""
    if state not in FINISHED:
        raise InvalidInput(f"only finished jobs can be deleted: state must be one of {', '.join(FINISHED)}")

    def page(after: str | None) -> Page[Job]:
        return repository.walk(
            tenant_id,
            state=state,
            job_type=job_type,
            queue=queue,
            finished_before=before,
            created_before=before,
            after=after,
            max_examined=BULK_PAGE,
        )

    return _bulk(page, repository.delete_finished, limit=limit, cursor=cursor)


def _bulk(
    page: Callable[[str | None], Page[Job]], action: Callable[[Job], bool], *, limit: int, cursor: str | None
) -> BulkOutcome:
    """Apply `action` to matching jobs, at most `limit` changes and MAX_EXAMINED jobs read per call; the cursor
    resumes exactly after the last job this call handled."""
    last_seen = after(cursor)
    changed = skipped = examined = 0
    while True:
        found = page(last_seen)
        examined += found.scanned
        for index, job in enumerate(found.items):
            if changed + skipped >= limit:
                return BulkOutcome(changed, skipped, examined, next_cursor(found.items[index - 1].id))
            if action(job):
                changed += 1
            else:
                skipped += 1
        last_seen = found.last
        if last_seen is None:
            return BulkOutcome(changed, skipped, examined)
        if examined >= MAX_EXAMINED or changed + skipped >= limit:
            return BulkOutcome(changed, skipped, examined, next_cursor(last_seen))


def briefs(tenant_id: str, *, created_from: datetime, after: str | None, max_examined: int) -> Page[JobBrief]:
    """One bounded page of the tenant's live jobs created since an instant, as much as counting needs."""
    return repository.briefs(tenant_id, created_from=created_from, after=after, max_examined=max_examined)
