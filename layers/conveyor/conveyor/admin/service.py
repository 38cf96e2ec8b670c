"""Admin use cases behind /v1/queues and the bulk job operations. Tenant policy lives here (see __init__)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from conveyor import jobs
from conveyor.admin import queues
from conveyor.admin.models import (
    BulkResult,
    CountWindow,
    DeadLetter,
    DeadLetterPage,
    DeadLetters,
    JobCounts,
    JobError,
    JobSummary,
    Messages,
    PauseResult,
    QueuesOverview,
    QueueStatus,
    RedriveRequest,
    RedriveResult,
    RetryFailedRequest,
)
from conveyor.jobs import JobState
from conveyor.platform import cache
from conveyor.platform.auth.keys import PLATFORM, Principal
from conveyor.platform.clock import Deadline, utcnow
from conveyor.platform.errors import Conflict, Forbidden, NotFound
from conveyor.platform.ids import ulid_ms
from conveyor.platform.observability import logger, scrub_text
from conveyor.platform.settings import get_settings

COUNT_WINDOW = timedelta(hours=24)
MAX_COUNTED = 10_000  # jobs read per overview: bounds its cost (the window then shrinks)
COUNT_SECONDS = 2.0  # and its time, under any load: the answer is never held up by a slow or busy table
COUNT_PAGE = 1_000
DEFAULT_REDRIVE = 100
PEEK_LIMIT = 50


def _family(name: str) -> str:
    if name not in get_settings().queues:
        raise NotFound(f"no queue {name!r}", details={"queues": sorted(get_settings().queues)})
    return name


def _platform(caller: Principal, what: str) -> None:
    if PLATFORM not in caller.scopes:
        raise Forbidden(
            f"{what} acts on every tenant and needs the {PLATFORM!r} scope", details={"required_scope": PLATFORM}
        )


def _yours(caller: Principal, all_tenants: bool) -> Callable[[queues.Message], bool]:
    """Which DLQ messages this caller may see and move: its tenant's, or (platform) all of them."""
    if all_tenants:
        _platform(caller, "all_tenants")
        return lambda message: True
    return lambda message: message.tenant_id == caller.tenant_id


# --- GET /v1/queues ------------------------------------------------------------------------------------
# The overview is polled by every open dashboard tab and CLI: its two expensive halves are shared-cached
# (conveyor.platform.cache). The queues' SQS and mapping facts are the same for every tenant (queues are shared),
# so they are cached once for the platform, tagged "queues" (pause/resume bumps it); job counts per tenant.
QUEUE_FACTS_TTL, QUEUE_FACTS_STALE = 10, 50
JOB_COUNTS_TTL, JOB_COUNTS_STALE = 2, 10  # live on the dashboard, yet one query per tenant per 2 s
QUEUES_TAG = "queues"


def overview(caller: Principal, now: datetime | None = None) -> tuple[QueuesOverview, cache.Status]:
    now = now or utcnow()
    shared = cache.shared()
    facts, facts_status = shared.get_or_set(
        cache.PLATFORM,
        "queues.facts",
        lambda: _queue_facts(now),
        ttl=QUEUE_FACTS_TTL,
        stale_ttl=QUEUE_FACTS_STALE,
        tags=[QUEUES_TAG],
    )
    counted, counts_status = shared.get_or_set(
        caller.tenant_id,
        "jobs.counts",
        lambda: _job_counts(caller.tenant_id, now).model_dump(mode="json"),
        ttl=JOB_COUNTS_TTL,
        stale_ttl=JOB_COUNTS_STALE,
    )
    counts = _TenantCounts.model_validate(counted)
    statuses = [
        QueueStatus.model_validate({**fact, "jobs": counts.by_queue.get(fact["name"]) or _no_jobs()}) for fact in facts
    ]
    return QueuesOverview(queues=statuses, jobs_window=counts.window), cache.combined(facts_status, counts_status)


def _queue_facts(now: datetime) -> list[dict[str, Any]]:
    """Every queue's depths, dead letters and pause state as SQS and Lambda report them (no tenant data)."""
    states = queues.mapping_states()
    facts = []
    for family in sorted(get_settings().queues):
        ref = queues.queue_ref(family)
        depth = queues.depths(ref.url)
        dlq_depth = queues.depths(ref.dlq_url)["ApproximateNumberOfMessages"] if ref.dlq_url else 0
        state = states.get(ref.arn)
        facts.append(
            {
                "name": family,
                "messages": Messages(
                    visible=depth["ApproximateNumberOfMessages"],
                    in_flight=depth["ApproximateNumberOfMessagesNotVisible"],
                    delayed=depth["ApproximateNumberOfMessagesDelayed"],
                ).model_dump(mode="json"),
                "dead_letters": DeadLetters(
                    depth=dlq_depth,
                    oldest_age_seconds=(
                        queues.oldest_age_seconds(ref.dlq_url, now) if ref.dlq_url and dlq_depth else None
                    ),
                ).model_dump(mode="json"),
                "paused": (state in queues.PAUSED_STATES) if state else None,
                "mapping_state": state,
            }
        )
    return facts


class _TenantCounts(BaseModel):
    by_queue: dict[str, JobCounts]
    window: CountWindow


def _no_jobs() -> JobCounts:
    return JobCounts(by_state=dict.fromkeys(jobs.STATES, 0), completed_last_hour=0, failed_last_hour=0)


def _job_counts(tenant_id: str, now: datetime) -> _TenantCounts:
    """Counts from the tenant's own partition: one key-range query over the jobs created in the last 24 h,
    newest first, projected to four attributes, at most MAX_COUNTED items in at most COUNT_SECONDS (the pages
    read by then; the window says how far back they reach). No scan, no counters to keep (each job write stays
    as it is); the price is the window: older jobs (e.g. reminders scheduled a week ahead) are not counted."""
    deadline = Deadline(COUNT_SECONDS)
    since = now - COUNT_WINDOW
    hour_ago = now - timedelta(hours=1)
    by_state: dict[str, Counter[str]] = defaultdict(Counter)
    recent: dict[str, Counter[str]] = defaultdict(Counter)
    minutes: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 60)
    counted, after, oldest = 0, None, since
    while True:
        page = jobs.briefs(tenant_id, created_from=since, after=after, max_examined=COUNT_PAGE)
        for job in page.items:
            by_state[job.queue][job.state] += 1
            finished_recently = job.finished_at is not None and job.finished_at >= hour_ago
            if job.state in (JobState.COMPLETED, JobState.FAILED) and finished_recently:
                recent[job.queue][job.state] += 1
                minute = min(59, int((job.finished_at - hour_ago).total_seconds() // 60))  # type: ignore[operator]
                minutes[(job.queue, job.state)][minute] += 1
        counted += len(page.items)
        after = page.last
        if after is None or counted >= MAX_COUNTED or deadline.expired():
            break
    complete = after is None
    if not complete and after:
        oldest = datetime.fromtimestamp(ulid_ms(after) / 1000, now.tzinfo)
    counts = {
        family: JobCounts(
            by_state={s: by_state[family][s] for s in jobs.STATES},
            completed_last_hour=recent[family][JobState.COMPLETED],
            failed_last_hour=recent[family][JobState.FAILED],
            completed_per_minute=minutes[(family, JobState.COMPLETED)],
            failed_per_minute=minutes[(family, JobState.FAILED)],
        )
        for family in by_state
    }
    return _TenantCounts(by_queue=counts, window=CountWindow(since=oldest, complete=complete, counted=counted))


# --- dead letters --------------------------------------------------------------------------------------
def dead_letters(caller: Principal, name: str, *, limit: int, all_tenants: bool) -> DeadLetterPage:
    ref = queues.queue_ref(_family(name))
    if not ref.dlq_url:
        raise Conflict(f"queue {name!r} has no dead-letter queue")
    found, examined = queues.peek(ref.dlq_url, _yours(caller, all_tenants), min(limit, PEEK_LIMIT))
    letters = []
    for message in found:
        # Whoever may see a message sees its job's summary: a tenant its own, the platform view (checked by
        # _yours) every tenant's; the error text of another tenant's job is scrubbed of personal data.
        job = _job(message.tenant_id, message.job_id, scrub=message.tenant_id != caller.tenant_id)
        letters.append(
            DeadLetter(
                message_id=message.raw["MessageId"],
                job_id=message.job_id,
                tenant_id=message.tenant_id,
                type=message.job_type,
                sent_at=message.sent_at,
                receive_count=message.receive_count,
                body=message.raw.get("Body") if message.job_id is None else None,
                job=job,
            )
        )
    depth = queues.depths(ref.dlq_url)["ApproximateNumberOfMessages"]
    return DeadLetterPage(queue=name, messages=letters, examined=examined, depth=depth)


def _job(tenant_id: str | None, job_id: str | None, *, scrub: bool = False) -> JobSummary | None:
    job = _find(tenant_id, job_id) if tenant_id and job_id else None
    if job is None:
        return None
    error = None
    if job.error is not None:
        error = JobError(type=job.error.type, message=scrub_text(job.error.message) if scrub else job.error.message)
    return JobSummary(state=job.state, attempts=job.attempts, max_attempts=job.max_attempts, error=error)


def _find(tenant_id: str, job_id: str) -> jobs.Job | None:
    try:
        return jobs.get(tenant_id, job_id)
    except NotFound:
        return None


def redrive(caller: Principal, name: str, request: RedriveRequest) -> RedriveResult:
    ref = queues.queue_ref(_family(name))
    if not ref.dlq_url or not ref.dlq_arn:
        raise Conflict(f"queue {name!r} has no dead-letter queue")
    wanted = _yours(caller, request.all_tenants)
    if request.all_tenants and request.max is None:
        # Everything, for everyone: let SQS move it server side where it can (no size or time limit here).
        handle = queues.start_move_task(ref.dlq_arn, ref.arn)
        if handle is not None:
            remaining = queues.depths(ref.dlq_url)["ApproximateNumberOfMessages"]
            logger.info("DLQ move task started", extra={"queue": name, "task": handle})
            return RedriveResult(
                queue=name, moved=0, examined=0, remaining=remaining, done=False, method="move_task", task_handle=handle
            )
    moved = queues.move(ref.dlq_url, ref.url, wanted, request.max or DEFAULT_REDRIVE)
    remaining = queues.depths(ref.dlq_url)["ApproximateNumberOfMessages"]
    logger.info(
        "redrove dead letters",
        extra={"queue": name, "moved": moved.moved, "examined": moved.examined, "all_tenants": request.all_tenants},
    )
    return RedriveResult(
        queue=name,
        moved=moved.moved,
        examined=moved.examined,
        remaining=remaining,
        done=moved.exhausted,
        method="receive_send_delete",
    )


def is_paused(name: str) -> bool | None:
    """Whether the worker takes no jobs from this queue (its mapping is disabled); None when no mapping is known."""
    state = queues.mapping_states().get(queues.queue_ref(_family(name)).arn)
    return (state in queues.PAUSED_STATES) if state else None


def set_paused(caller: Principal, name: str, paused: bool) -> PauseResult:
    _platform(caller, "pausing or resuming a queue")
    ref = queues.queue_ref(_family(name))
    state = queues.set_enabled(ref.arn, not paused)
    if state is None:
        raise Conflict(f"queue {name!r} has no worker event source mapping to {'pause' if paused else 'resume'}")
    cache.shared().bump(cache.PLATFORM, QUEUES_TAG)  # the next overview, in every container, shows it
    logger.warning("queue paused" if paused else "queue resumed", extra={"queue": name, "key_id": caller.key_id})
    return PauseResult(queue=name, paused=state in queues.PAUSED_STATES, mapping_state=state)


# --- bulk job operations (the jobs engine does them; the admin API only asks) ---------------------------
def retry_failed(tenant_id: str, request: RetryFailedRequest) -> BulkResult:
    outcome = jobs.retry_failed(
        tenant_id,
        job_type=request.type,
        queue=_family(request.queue) if request.queue else None,
        since=request.since,
        limit=request.limit,
        cursor=request.cursor,
    )
    return BulkResult(**vars(outcome))


def delete_finished(
    tenant_id: str,
    *,
    state: str,
    before: datetime,
    limit: int,
    cursor: str | None,
    queue: str | None = None,
    job_type: str | None = None,
) -> BulkResult:
    outcome = jobs.delete_finished(
        tenant_id,
        state=state,
        before=before,
        limit=limit,
        cursor=cursor,
        queue=_family(queue) if queue else None,
        job_type=job_type,
    )
    return BulkResult(**vars(outcome))
