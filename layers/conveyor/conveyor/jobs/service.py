"""Job use cases behind the HTTP API. Every function takes the caller's tenant; nothing crosses tenants."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime, timedelta

from pydantic import ValidationError

from conveyor.jobs import registry, store
from conveyor.jobs.dispatch import MAX_DELAY_SECONDS
from conveyor.jobs.models import EnqueueRequest, Job, JobPage
from conveyor.jobs.store import QUEUED, SCHEDULED, IdempotencyRecord, JobRecord, utcnow
from conveyor.platform.errors import BadRequest, Conflict, InvalidInput, NotFound
from conveyor.platform.ids import new_id
from conveyor.platform.settings import get_settings

IDEMPOTENCY_WINDOW = timedelta(hours=48)  # promised: at least 24 h


def enqueue(
    tenant_id: str, request: EnqueueRequest, idempotency_key: str | None = None, *, queue: str | None = None
) -> tuple[Job, bool]:
    """Accept a job. Returns (job, created); a repeated Idempotency-Key returns the first job, created=False.

    `queue` (domain code only, never the public API) puts the job on another family's queue than its type's
    default, e.g. reminder notifications on `reminders` so a burst of them never delays ad-hoc ones.
    """
    kind = registry.require(request.type)
    payload = _validated_payload(kind, request)
    queue = queue or kind.queue
    get_settings().queue_url(queue)  # a job type whose queue is not deployed is a deployment bug: fail loudly

    claim = None
    if idempotency_key is not None:
        key = _idempotency_item(idempotency_key)
        fingerprint = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        existing = _replay(tenant_id, key, fingerprint)
        if existing is not None:
            return existing, False

    now = utcnow()
    run_at = request.run_at or (now + timedelta(seconds=request.delay_seconds) if request.delay_seconds else None)
    if run_at is not None and run_at <= now:
        run_at = None
    job = JobRecord(
        tenant_id,
        new_id("job"),
        type=kind.name,
        queue=queue,
        payload=payload,
        max_attempts=request.max_attempts or kind.retry.max_attempts,
        attempts=0,
        defers=0,
        progress=0,
        run_at=run_at,
        created_at=now,
        updated_at=now,
        idempotency_key=idempotency_key,
    )
    if run_at is not None and (run_at - now).total_seconds() > MAX_DELAY_SECONDS:
        job.state, job.due_shard, job.due_at = SCHEDULED, store.due_shard_for(job.id), int(run_at.timestamp())
    else:
        job.state = QUEUED  # the dispatcher sends it, with DelaySeconds if run_at is near
    job.timeline = [store.TimelineEntry(state=job.state, at=now)]

    if idempotency_key is not None:
        claim = IdempotencyRecord(
            tenant_id,
            key,
            job_id=job.id,
            fingerprint=fingerprint,
            expires_at=int((now + IDEMPOTENCY_WINDOW).timestamp()),
        )
    if not store.insert(job, idempotency=claim):
        # Lost a race with a concurrent request carrying the same key: answer with the winner's job.
        existing = _replay(tenant_id, key, fingerprint)
        if existing is None:
            raise Conflict("a request with this Idempotency-Key is in progress; retry shortly")
        return existing, False
    return Job.of(job), True


def _validated_payload(kind: registry.JobType, request: EnqueueRequest) -> dict:
    try:
        model = kind.payload_model.model_validate(request.payload)
    except ValidationError as exc:
        details = [
            {"loc": ["body", "payload", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidInput(f"invalid payload for job type {kind.name!r}", details=details) from None
    return model.model_dump(mode="json", exclude_unset=True)


def _replay(tenant_id: str, key: str, fingerprint: str) -> Job | None:
    claim = store.find_idempotency(tenant_id, key)
    if claim is None:
        return None
    if claim.fingerprint != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request", details={"job_id": claim.job_id}
        )
    job = store.get(tenant_id, claim.job_id, consistent=True)
    if job is None:
        return None
    return Job.of(job)


def get(tenant_id: str, job_id: str) -> Job:
    return Job.of(_require(tenant_id, job_id))


def _require(tenant_id: str, job_id: str) -> JobRecord:
    job = store.get(tenant_id, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
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
) -> JobPage:
    if created_from and created_before and created_before <= created_from:
        raise BadRequest("created_before must be after created_from")
    items, last = store.query(
        tenant_id,
        state=state,
        job_type=job_type,
        limit=limit,
        after=decode_cursor(cursor),
        queue=queue,
        created_from=created_from,
        created_before=created_before,
        oldest_first=oldest_first,
    )
    return JobPage(items=[Job.of(i) for i in items], next_cursor=encode_cursor(last) if last else None)


def find(tenant_id: str, text: str) -> Job | None:
    """Search: the tenant's job with this id, or the job its Idempotency-Key (as the client sent it) created."""
    text = text.strip()
    if not text or len(text) > 255:
        return None
    job = store.get(tenant_id, text) if text.startswith(store.JOB_PREFIX) else None
    if job is None:
        claim = store.find_idempotency(tenant_id, _idempotency_item(text))
        job = store.get(tenant_id, claim.job_id) if claim else None
    return Job.of(job) if job else None


def _idempotency_item(idempotency_key: str) -> str:
    return "idem#" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def encode_cursor(job_id: str) -> str:
    """An opaque page cursor: the last job id seen. The tenant always comes from the caller, never the cursor."""
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        job_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        job_id = ""
    if not job_id.startswith(store.JOB_PREFIX):
        raise BadRequest("invalid cursor")
    return job_id


def cancel(tenant_id: str, job_id: str) -> Job:
    job = _require(tenant_id, job_id)
    if not store.cancel(job):
        current = store.get(tenant_id, job_id, consistent=True) or job
        raise Conflict(
            f"job is {current.state}; only scheduled, queued or retrying jobs can be cancelled",
            details={"state": current.state},
        )
    return Job.of(job)


def retry(tenant_id: str, job_id: str) -> Job:
    job = _require(tenant_id, job_id)
    if not store.requeue(job):
        raise Conflict(
            f"job is {job.state}; only failed or cancelled jobs can be retried", details={"state": job.state}
        )
    return Job.of(job)


def run_now(tenant_id: str, job_id: str) -> Job:
    """A scheduled job goes to its queue now instead of at run_at (the scheduler's release, done early)."""
    job = _require(tenant_id, job_id)
    if job.state != store.SCHEDULED or job.due_at is None or not store.run_early(tenant_id, job_id, int(job.due_at)):
        current = store.get(tenant_id, job_id, consistent=True) or job
        raise Conflict(f"job is {current.state}; only scheduled jobs can be run now", details={"state": current.state})
    return Job.of(store.get(tenant_id, job_id, consistent=True) or job)


def delete(tenant_id: str, job_id: str) -> None:
    """Delete a finished job (completed, failed or cancelled), only if it did not change state meanwhile."""
    job = _require(tenant_id, job_id)
    if not store.delete_finished(job):
        raise Conflict(
            f"job is {job.state}; only completed, failed or cancelled jobs can be deleted", details={"state": job.state}
        )
