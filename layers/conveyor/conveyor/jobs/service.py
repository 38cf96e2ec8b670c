"""Job use cases behind the HTTP API. Every function takes the caller's tenant; nothing crosses tenants."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import timedelta

from pydantic import ValidationError

from conveyor.jobs import registry, store
from conveyor.jobs.dispatch import MAX_DELAY_SECONDS
from conveyor.jobs.models import EnqueueRequest, Job, JobPage
from conveyor.jobs.store import QUEUED, SCHEDULED, IdempotencyRecord, JobRecord, utcnow
from conveyor.platform.auth.keys import Principal
from conveyor.platform.dynamo import stored_size
from conveyor.platform.errors import BadRequest, Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from conveyor.platform.ids import new_id
from conveyor.platform.settings import get_settings

IDEMPOTENCY_WINDOW = timedelta(hours=48)  # promised: at least 24 h
# A job item holds its payload, a bounded timeline, its result and a few small fields; DynamoDB's item limit
# is 400 KB, so the payload (stored as compact UTF-8 JSON, never larger than the body that carried it) gets 256 KB.
MAX_PAYLOAD_BYTES = 256 * 1024


def enqueue(
    tenant_id: str,
    request: EnqueueRequest,
    idempotency_key: str | None = None,
    *,
    queue: str | None = None,
    caller: Principal | None = None,
) -> tuple[Job, bool]:
    """Accept a job. Returns (job, created); a repeated Idempotency-Key returns the first job, created=False.

    `caller` (the public API) must hold the type's write scope as well (registry.Scopes); domain code that
    enqueues on its own behalf passes none. `queue` (domain code only, never the public API) puts the job on
    another family's queue than its type's default, e.g. reminder notifications on `reminders` so a burst of
    them never delays ad-hoc ones.
    """
    kind = registry.require(request.type)
    _require_scope(caller, kind.scopes.write, kind.name)
    payload = _validated_payload(kind, request)
    queue = queue or kind.queue
    get_settings().queue_url(queue)  # a job type whose queue is not deployed is a deployment bug: fail loudly

    claim = None
    orphaned: str | None = None  # the job id of a claim whose job no longer exists (deleted, aged out)
    if idempotency_key is not None:
        key = "idem#" + hashlib.sha256(idempotency_key.encode()).hexdigest()
        fingerprint = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        existing, orphaned = _replay(tenant_id, key, fingerprint)
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
    if not store.insert(job, idempotency=claim, replacing=orphaned):
        # Lost a race with a concurrent request carrying the same key: answer with the winner's job.
        existing, _ = _replay(tenant_id, key, fingerprint)
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
    payload = model.model_dump(mode="json", exclude_unset=True)
    size = stored_size(payload)
    if size > MAX_PAYLOAD_BYTES:  # what is stored is limited, not only what is received
        raise PayloadTooLarge(f"the payload takes {size} bytes stored; the limit is {MAX_PAYLOAD_BYTES}")
    return payload


def _replay(tenant_id: str, key: str, fingerprint: str) -> tuple[Job | None, str | None]:
    """(the job this key already made, None), or (None, its job id) when the claim outlived its job (the job
    was deleted or aged out): such a claim holds nothing, and the new request may take it over."""
    claim = store.find_idempotency(tenant_id, key)
    if claim is None:
        return None, None
    job = store.get(tenant_id, claim.job_id, consistent=True)
    if job is None:
        return None, claim.job_id
    if claim.fingerprint != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request", details={"job_id": claim.job_id}
        )
    return Job.of(job), None


def _require_scope(caller: Principal | None, scope: str | None, job_type: str) -> None:
    if caller is not None and scope is not None and not caller.allows(scope):
        raise Forbidden(
            f"jobs of type {job_type!r} need the {scope!r} scope as well", details={"required_scope": scope}
        )


def _scopes(job_type: str) -> registry.Scopes:
    kind = registry.get(job_type)
    return kind.scopes if kind else registry.Scopes()


def get(tenant_id: str, job_id: str, *, caller: Principal | None = None) -> Job:
    return Job.of(_require(tenant_id, job_id, caller, write=False))


def _require(tenant_id: str, job_id: str, caller: Principal | None = None, *, write: bool) -> JobRecord:
    job = store.get(tenant_id, job_id)
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
    caller: Principal | None = None,
) -> JobPage:
    """A tenant's jobs, newest first. A caller sees only the types whose read scope it holds: asking for one it
    lacks is refused, and the others are left out of an unfiltered listing."""
    hidden: list[str] = []
    if caller is not None:
        if job_type is not None:
            _require_scope(caller, _scopes(job_type).read, job_type)
        hidden = registry.unreadable_by(caller.allows)
    items, last = store.query(
        tenant_id, state=state, job_type=job_type, limit=limit, after=decode_cursor(cursor), exclude_types=hidden
    )
    return JobPage(items=[Job.of(i) for i in items], next_cursor=encode_cursor(last) if last else None)


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


def cancel(tenant_id: str, job_id: str, *, caller: Principal | None = None) -> Job:
    job = _require(tenant_id, job_id, caller, write=True)
    if not store.cancel(job):
        current = store.get(tenant_id, job_id, consistent=True) or job
        raise Conflict(
            f"job is {current.state}; only scheduled, queued or retrying jobs can be cancelled",
            details={"state": current.state},
        )
    return Job.of(job)


def retry(tenant_id: str, job_id: str, *, caller: Principal | None = None) -> Job:
    job = _require(tenant_id, job_id, caller, write=True)
    if not store.requeue(job):
        raise Conflict(
            f"job is {job.state}; only failed or cancelled jobs can be retried", details={"state": job.state}
        )
    return Job.of(job)
