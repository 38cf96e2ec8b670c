"""A reminder's notification.send job: re-check the reminder against its source, then deliver it once through
notify. Registered with notify (`on_behalf_of("reminder", ...)`) when the worker loads the job modules, so
notify runs reminder jobs without importing reminders (the dependency points one way: reminders -> notify).
Reminders' other hook, following contact changes (`on_contact_changed`), is registered here too: notify loads the
job modules before it tells listeners, so every instance (an API instance that served no reminders route, a worker
running a CRM sync) re-plans a moved contact's doses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conveyor import notify
from conveyor.jobs import JobContext
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import PermanentError
from conveyor.platform.observability import count, logger
from conveyor.reminders import planning, repository, service
from conveyor.reminders.domain import OPEN, Reminder, ReminderState

EARLY_SLACK = timedelta(minutes=1)


def send_reminder(reminder_id: str, job: JobContext) -> dict[str, Any]:
    now = utcnow()
    reminder = repository.get_reminder(job.tenant_id, "rem#" + reminder_id, consistent=True)
    if reminder is None:
        raise PermanentError(f"reminder {reminder_id!r} not found")
    result: dict[str, Any] = {"reminder_id": reminder_id}
    if reminder.delivered_via:
        return {**result, "state": reminder.state, "delivered_via": reminder.delivered_via}
    skipped = _not_this_jobs(reminder, job, now)
    if skipped:
        return {**result, "skipped": skipped}
    if job.attempt > 1:
        # An earlier attempt may have delivered it and died before recording so here: record, never resend.
        earlier = notify.delivered(job)
        if earlier is not None and earlier.delivered is not None:
            repository.mark_sent(reminder, job.job_id, earlier.delivered, earlier.history, now)
            return {**result, "state": ReminderState.SENT, **earlier.as_result()}

    # The worker's own check: cancelled, rescheduled or started since the sweep queued it -> nothing is sent.
    # (Quiet hours were the sweep's call a moment ago; they are not re-applied here.)
    verdict = planning.check(reminder, now, quiet=False)
    if verdict.action in ("cancel", "expire"):
        state = ReminderState.CANCELLED if verdict.action == "cancel" else ReminderState.EXPIRED
        repository.close_reminder(reminder, state, verdict.reason, now=now)
        count("RemindersExpired" if state == ReminderState.EXPIRED else "RemindersCancelled", notify.SEND_JOB_TYPE)
        logger.info("reminder not sent", extra={"reminder_id": reminder_id, "state": state, "reason": verdict.reason})
        return {**result, "skipped": verdict.reason, "state": state}

    assert verdict.contact is not None and verdict.context is not None  # noqa: S101 - a send verdict carries them
    try:
        message = notify.message_from_template(verdict.template, verdict.context)
    except PermanentError as exc:  # e.g. a template that needs more than a reminder provides
        repository.close_reminder(reminder, ReminderState.FAILED, exc.message, now=now)
        raise
    source = {"reminder_id": reminder_id, "kind": reminder.kind, "source_id": reminder.source_id}
    outcome = notify.deliver(verdict.contact, message, job, source=source)
    if outcome.delivered is not None:
        repository.mark_sent(reminder, job.job_id, outcome.delivered, outcome.history, now)
        count("RemindersSent", notify.SEND_JOB_TYPE)
        return {**result, "state": ReminderState.SENT, **outcome.as_result()}

    state = ReminderState.SKIPPED if outcome.opted_out_of_all else ReminderState.FAILED
    reason = (
        "the contact opted out of every channel"
        if state == ReminderState.SKIPPED
        else notify.undeliverable(outcome.history)
    )
    repository.mark_undelivered(reminder, state, job.job_id, reason, outcome.history, now)
    if state == ReminderState.SKIPPED:
        return {**result, "state": state, "skipped": reason, **outcome.as_result()}
    raise PermanentError(reason)


def _not_this_jobs(reminder: Reminder, job: JobContext, now: Any) -> str | None:
    """Why this job must not send the reminder (None: it may)."""
    if reminder.state not in OPEN:
        return f"the reminder is {reminder.state}"
    if reminder.state == ReminderState.QUEUED and reminder.job_id not in (None, job.job_id):
        return f"the reminder belongs to job {reminder.job_id}"
    if reminder.state == ReminderState.PENDING and reminder.remind_at > (now + EARLY_SLACK).timestamp():
        return "the reminder is not due yet"
    if reminder.state == ReminderState.PENDING:
        # Due, and no sweep queued it (this job is an earlier firing's): take it, so that exactly one job owns
        # the reminder; a sweep firing it meanwhile loses this race, or wins it and this job stands down.
        if reminder.due_at is None or not repository.mark_queued(reminder, job.job_id, int(reminder.due_at), now):
            return "another job took the reminder"
    return None


notify.on_behalf_of("reminder", send_reminder)
notify.on_contact_changed(service.contact_changed)  # a contact's new time zone re-plans their medication doses
