"""The reminder sweep, run by the one-minute scheduler next to the delayed-jobs sweep.

Everything due in the reminders table's sparse due index is handled:
  rem#...  a pending reminder: re-checked against its source -> `expired` (the appointment already started),
           `cancelled` (cancelled, rescheduled, deleted), deferred (quiet hours), or a `notification.send` job on
           the `reminders` queue, then `queued`.
  med#...  a medication schedule whose planned horizon must roll forward (the next doses get their reminders).

Exactly once, without locks: the job is created through the jobs engine with a job id derived from the
reminder's key and due time, so sweeps that overlap, or one that dies half-way and runs again, all get the same job;
the pending -> queued write is conditional, so one sweep wins it. After an outage the first sweep catches up
on everything due (stale appointment reminders expire instead of going out late).
"""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor import jobs, notify
from conveyor.platform.clock import Deadline
from conveyor.platform.errors import Conflict, NotFound
from conveyor.platform.observability import count, logger, report_exception
from conveyor.reminders import planning, repository
from conveyor.reminders.domain import Reminder, ReminderState

JOB_TYPE, QUEUE = notify.SEND_JOB_TYPE, "reminders"


def sweep_reminders(now: datetime, deadline: Deadline) -> int:
    """Queue every due reminder once and roll due medication horizons, until the deadline (whatever is left over
    goes out on the next run); returns how many reminders were queued."""
    stats = {
        "queued": 0,
        "expired": 0,
        "cancelled": 0,
        "failed": 0,
        "deferred": 0,
        "skipped": 0,
        "rolled": 0,
        "errors": 0,
    }
    for tenant_id, sk, due_at in deadline.bounded(repository.due_keys(now)):
        try:
            if sk.startswith("med#"):
                stats["rolled"] += roll(tenant_id, sk, due_at, now)
            else:
                reminder = repository.get_reminder(tenant_id, sk, consistent=True)
                stats[fire(reminder, due_at, now)] += 1
        except Exception as exc:  # noqa: BLE001 - one bad item must not hold back every reminder after it
            stats["errors"] += 1
            logger.exception("reminder sweep item failed; retried next run", extra={"tenant_id": tenant_id, "sk": sk})
            report_exception(exc, tags={"tenant_id": tenant_id, "sk": sk, "sweep": "reminders"})
    if any(stats.values()):
        logger.info("reminder sweep", extra=stats)
    return stats["queued"]


def fire(reminder: Reminder | None, due_at: int, now: datetime) -> str:
    """One due reminder, as read by this sweep. Returns what became of it."""
    if reminder is None or (reminder.due_at or 0) != due_at:
        return "skipped"  # another sweep, an edit or a worker got there first
    if reminder.state == ReminderState.QUEUED:
        return follow_up(reminder, due_at, now)
    if reminder.state != ReminderState.PENDING:
        return "skipped"
    verdict = planning.check(reminder, now)
    if verdict.action in ("cancel", "expire"):
        state = ReminderState.CANCELLED if verdict.action == "cancel" else ReminderState.EXPIRED
        if repository.close_reminder(reminder, state, verdict.reason, expect=(ReminderState.PENDING,), now=now):
            count("RemindersExpired" if state == ReminderState.EXPIRED else "RemindersCancelled", JOB_TYPE)
        return "expired" if state == ReminderState.EXPIRED else "cancelled"
    if verdict.action == "defer" and verdict.until is not None:
        repository.reschedule_reminder(reminder, int(verdict.until.timestamp()), verdict.reason)
        return "deferred"

    request = jobs.NewJob(JOB_TYPE, payload={"contact_id": reminder.contact_id, "reminder_id": reminder.id})
    # One job per firing of the reminder (its key and the due time this sweep saw), its id derived from them:
    # overlapping sweeps of the same firing share it; a firing after a deferral (quiet hours) or a follow-up
    # gets its own. One conditional put, not an idempotency claim's transaction.
    job_id = jobs.derived_job_id(f"reminder:{reminder.key}:{due_at}", datetime.fromtimestamp(due_at, UTC))
    try:
        job, _ = jobs.enqueue(reminder.tenant_id, request, queue=QUEUE, job_id=job_id)
    except Conflict:
        return "skipped"  # its job was deleted this instant; the next run looks again
    if not repository.mark_queued(reminder, job.id, due_at, now):
        return "skipped"  # the same job, already recorded by the sweep that won
    count("RemindersQueued", JOB_TYPE)
    return "queued"


def follow_up(reminder: Reminder, due_at: int, now: datetime) -> str:
    """A queued reminder still open QUEUED_CHECK after it was queued: its job decides. Still running -> look
    again later; cancelled -> the reminder is cancelled; failed -> failed; finished without sending it (or
    gone) -> pending again, fired anew by the next sweep."""
    job = None
    if reminder.job_id:
        try:
            job = jobs.get(reminder.tenant_id, reminder.job_id)
        except NotFound:
            job = None  # deleted or aged out
    if job is not None and not job.finished:
        repository.check_queued_later(reminder, due_at, now)
        return "skipped"
    if job is not None and job.state == jobs.JobState.CANCELLED:
        note = f"its job {job.id} was cancelled"
        repository.close_reminder(reminder, ReminderState.CANCELLED, note, expect=(ReminderState.QUEUED,), now=now)
        count("RemindersCancelled", JOB_TYPE)
        return "cancelled"
    if job is not None and job.state == jobs.JobState.FAILED:
        note = f"its job {job.id} failed: {job.error.message if job.error else 'no reason recorded'}"
        repository.close_reminder(reminder, ReminderState.FAILED, note, expect=(ReminderState.QUEUED,), now=now)
        return "failed"
    repository.requeue_pending(reminder, due_at, "its job ended without sending it; sent again", now)
    return "deferred"


def roll(tenant_id: str, sk: str, due_at: int, now: datetime) -> int:
    med = repository.get_medication(tenant_id, sk.removeprefix("med#"), consistent=True)
    if med is None or med.due_at is None or med.due_at != due_at:
        return 0
    planning.roll_medication(med, planning.policy(tenant_id).medication_template, now)
    return 1
