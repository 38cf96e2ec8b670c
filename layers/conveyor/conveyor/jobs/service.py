"""Job use cases: enqueue, read, list, cancel, retry. Every function takes the caller's tenant; nothing crosses
tenants. Other capabilities enqueue through here (via conveyor.jobs), never by writing the jobs table."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from conveyor.jobs import registry, repository
from conveyor.jobs.domain import (
    FINISHED,
    JOB_PREFIX,
    MAX_DELAY_SECONDS,
    BulkOutcome,
    IdempotencyClaim,
    Job,
    JobBrief,
    JobState,
    NewJob,
    Page,
    TimelineEvent,
)
from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import decode_cursor, encode_cursor, expires_at
from conveyor.platform.errors import Conflict, InvalidInput, InvalidState, NotFound
from conveyor.platform.ids import new_id
from conveyor.platform.settings import get_settings

IDEMPOTENCY_WINDOW = timedelta(hours=48)  # promised: at least 24 h


def enqueue(
    tenant_id: str, request: NewJob, idempotency_key: str | None = None, *, queue: str | None = None
) -> tuple[Job, bool]:
    """Accept a job. Returns (job, created); a repeated Idempotency-Key returns the first job, created=False.

    `queue` (domain code only, never the public API) puts the job on another family's queue than its type's
    default, e.g. reminder notifications on `reminders` so a burst of them never delays ad-hoc ones.
    """
    kind = registry.require(request.type)
    payload = _validated_payload(kind, request.payload)
    queue = queue or kind.queue
    get_settings().queue_url(queue)  # a job type whose queue is not deployed is a deployment bug: fail loudly

    key = fingerprint = ""
    if idempotency_key is not None:
        key = "idem#" + hashlib.sha256(idempotency_key.encode()).hexdigest()
        fingerprint = request.fingerprint()
        existing = _replay(tenant_id, key, fingerprint)
        if existing is not None:
            return existing, False

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
        id=new_id("job"),
        type=kind.name,
        queue=queue,
        state=state,
        payload=payload,
        max_attempts=request.max_attempts or kind.retry.max_attempts,
        created_at=now,
        updated_at=now,
        run_at=run_at,
        idempotency_key=idempotency_key,
        timeline=(TimelineEvent(state, now),),
    )
    claim = None
    if idempotency_key is not None:
        claim = IdempotencyClaim(tenant_id, key, job.id, fingerprint, expires_at(now, IDEMPOTENCY_WINDOW))
    if not repository.insert(job, idempotency=claim):
        # Lost a race with a concurrent request carrying the same key: answer with the winner's job.
        existing = _replay(tenant_id, key, fingerprint)
        if existing is None:
            raise Conflict("a request with this Idempotency-Key is in progress; retry shortly")
        return existing, False
    return job, True


def _validated_payload(kind: registry.JobType, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        model = kind.payload_model.model_validate(payload)
    except ValidationError as exc:
        fields = [
            {"loc": ["payload", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput(f"invalid payload for job type {kind.name!r}", fields=fields) from None
    return model.model_dump(mode="json", exclude_unset=True)


def _replay(tenant_id: str, key: str, fingerprint: str) -> Job | None:
    claim = repository.find_idempotency(tenant_id, key)
    if claim is None:
        return None
    if claim.fingerprint != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request", details={"job_id": claim.job_id}
        )
    return repository.get(tenant_id, claim.job_id, consistent=True)


def get(tenant_id: str, job_id: str) -> Job:
    job = repository.get(tenant_id, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return job


def list_jobs(
    tenant_id: str, *, state: str | None, job_type: str | None, limit: int, cursor: str | None
) -> tuple[list[Job], str | None]:
    """A page of the tenant's jobs, newest first, and the cursor of the next page (None: the last page)."""
    items, last = repository.query(tenant_id, state=state, job_type=job_type, limit=limit, after=after(cursor))
    return items, next_cursor(last)


def next_cursor(last_job_id: str | None) -> str | None:
    """The opaque cursor that continues a walk over a tenant's jobs after `last_job_id`."""
    return encode_cursor(sk=last_job_id) if last_job_id else None


def after(cursor: str | None) -> str | None:
    """The last job id a cursor from `next_cursor` stands for (InvalidCursor if it is not one)."""
    fields = decode_cursor(cursor, {"sk": JOB_PREFIX})
    return fields["sk"] if fields else None


def cancel(tenant_id: str, job_id: str) -> Job:
    job = get(tenant_id, job_id)
    cancelled = repository.cancel(job)
    if cancelled is None:
        current = repository.get(tenant_id, job_id, consistent=True) or job
        raise InvalidState(
            f"job is {current.state}; only scheduled, queued or retrying jobs can be cancelled",
            details={"state": current.state},
        )
    return cancelled


def retry(tenant_id: str, job_id: str) -> Job:
    job = get(tenant_id, job_id)
    requeued = repository.requeue(job)
    if requeued is None:
        raise InvalidState(
            f"job is {job.state}; only failed or cancelled jobs can be retried", details={"state": job.state}
        )
    return requeued


# --- bounded bulk operations (the admin API's) ------------------------------------------------------------
BULK_PAGE = 500
MAX_EXAMINED = 2_000  # jobs read per bulk call, whatever matches: a call cannot time out


def retry_failed(
    tenant_id: str, *, job_type: str | None, since: datetime | None, limit: int, cursor: str | None
) -> BulkOutcome:
    """Requeue the tenant's failed jobs (of one type, created since an instant), newest first, bounded."""

    def page(after: str | None) -> Page[Job]:
        return repository.walk(
            tenant_id,
            state=JobState.FAILED,
            job_type=job_type,
            created_from=since,
            after=after,
            max_examined=BULK_PAGE,
        )

    return _bulk(page, lambda job: repository.requeue(job) is not None, limit=limit, cursor=cursor)


def delete_finished(tenant_id: str, *, state: str, before: datetime, limit: int, cursor: str | None) -> BulkOutcome:
    """Delete the tenant's jobs that finished in `state` before an instant, newest first, bounded."""
    if state not in FINISHED:
        raise InvalidInput(f"only finished jobs can be deleted: state must be one of {', '.join(FINISHED)}")

    def page(after: str | None) -> Page[Job]:
        return repository.walk(
            tenant_id,
            state=state,
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
