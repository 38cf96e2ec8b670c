"""A reminder's notification.send job: re-check the reminder against its source, then deliver it once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conveyor.jobs import JobContext
from conveyor.notify.channels import Message, deliver
from conveyor.notify.job import undeliverable
from conveyor.platform.errors import PermanentError
from conveyor.platform.observability import count, logger
from conveyor.reminders import planning, store
from conveyor.reminders.store import OPEN, PENDING, QUEUED, ReminderRecord, utcnow

EARLY_SLACK = timedelta(minutes=1)
JOB_TYPE = "notification.send"


def send_reminder(reminder_id: str, job: JobContext) -> dict[str, Any]:
    now = utcnow()
    reminder = store.get(ReminderRecord, job.tenant_id, "rem#" + reminder_id, consistent=True)
    if reminder is None:
        raise PermanentError(f"reminder {reminder_id!r} not found")
    result: dict[str, Any] = {"reminder_id": reminder_id}
    if reminder.delivered_via:
        return {**result, "state": reminder.state, "delivered_via": reminder.delivered_via}
    if reminder.state not in OPEN:
        return {**result, "skipped": f"the reminder is {reminder.state}"}
    if reminder.state == QUEUED and reminder.job_id not in (None, job.job_id):
        return {**result, "skipped": f"the reminder belongs to job {reminder.job_id}"}
    if reminder.state == PENDING and int(reminder.remind_at) > (now + EARLY_SLACK).timestamp():
        return {**result, "skipped": "the reminder is not due yet"}

    # The worker's own check: cancelled, rescheduled or started since the sweep queued it -> nothing is sent.
    # (Quiet hours were the sweep's call a moment ago; they are not re-applied here.)
    verdict = planning.check(reminder, now, quiet=False)
    if verdict.action in ("cancel", "expire"):
        state = store.CANCELLED if verdict.action == "cancel" else store.EXPIRED
        store.close_reminder(reminder, state, verdict.reason, now=now)
        count("RemindersExpired" if state == store.EXPIRED else "RemindersCancelled", JOB_TYPE)
        logger.info("reminder not sent", extra={"reminder_id": reminder_id, "state": state, "reason": verdict.reason})
        return {**result, "skipped": verdict.reason, "state": state}

    assert verdict.contact is not None and verdict.context is not None  # noqa: S101 - a send verdict carries them
    model = store.table(ReminderRecord)
    try:
        message = Message.from_template(verdict.template, verdict.context)
    except PermanentError as exc:  # e.g. a template that needs more than a reminder provides
        store.close_reminder(reminder, store.FAILED, exc.message, now=now)
        raise
    sent = [
        model.state.set(store.SENT),
        model.job_id.set(job.job_id),
        model.updated_at.set(now),
        model.note.remove(),
        model.expires_at.set(int((now + store.RETENTION).timestamp())),
        model.due_shard.remove(),
        model.due_at.remove(),
    ]
    earlier = list(reminder.attempts or [])
    source = {"reminder_id": reminder_id, "kind": reminder.kind, "source_id": reminder.source_id}
    outcome = deliver(reminder, verdict.contact, message, job, source=source, on_delivered=sent)
    if outcome.delivered is not None:
        count("RemindersSent", JOB_TYPE)
        return {**result, "state": store.SENT, **outcome.as_result()}

    state = store.SKIPPED if outcome.opted_out_of_all else store.FAILED
    reason = (
        "the contact opted out of every channel"
        if state == store.SKIPPED
        else undeliverable([*earlier, *outcome.new_attempts])
    )
    store.record_attempts(
        reminder,
        outcome.new_attempts,
        extra=[
            model.state.set(state),
            model.job_id.set(job.job_id),
            model.note.set(reason[:500]),
            model.updated_at.set(now),
            model.expires_at.set(int((now + store.RETENTION).timestamp())),
            model.due_shard.remove(),
            model.due_at.remove(),
        ],
    )
    if state == store.SKIPPED:
        return {**result, "state": state, "skipped": reason, **outcome.as_result()}
    raise PermanentError(reason)
