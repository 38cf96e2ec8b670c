"""The `notification.send` job type: one notification to one contact over their preferred channels.

Two kinds of payload: a reminder's (`reminder_id`; content and validity come from the reminder and its source,
re-checked right before sending), or ad-hoc content (a template with its context, or a subject and a text),
as POST /v1/notifications enqueues it. Ad-hoc jobs keep their per-channel record in a delivery log keyed by
the job id. Ad-hoc jobs go to the `notifications` queue; the reminder sweep puts its jobs on `reminders`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from conveyor.jobs import JobContext, RetryPolicy, Scopes, job_type
from conveyor.notify.channels import Message, deliver
from conveyor.platform.errors import PermanentError
from conveyor.reminders import store
from conveyor.reminders.models import NotificationRequest
from conveyor.reminders.store import ContactRecord, DeliveryLogRecord


class NotificationPayload(NotificationRequest):
    model_config = ConfigDict(extra="forbid")

    reminder_id: str | None = Field(default=None, max_length=300, description="Set by the reminder sweep")

    @model_validator(mode="after")
    def _has_content(self) -> NotificationPayload:  # overrides the request's check: a reminder brings its own
        if self.reminder_id is None and self.template is None and not (self.subject and self.text):
            raise ValueError("give a template, or a subject and a text")
        return self


@job_type(
    "notification.send",
    queue="notifications",
    payload=NotificationPayload,
    retry=RetryPolicy(max_attempts=5, base_seconds=30, cap_seconds=600),
    # Over /v1/jobs as over /v1/notifications: messaging a tenant's contacts needs reminders:write, reading
    # what was sent to them needs reminders:read.
    scopes=Scopes(read="reminders:read", write="reminders:write"),
)
def send_notification(payload: NotificationPayload, job: JobContext) -> dict[str, Any]:
    if payload.reminder_id is not None:
        from conveyor.reminders.sending import send_reminder

        return send_reminder(payload.reminder_id, job)
    return _send_adhoc(payload, job)


def _send_adhoc(payload: NotificationPayload, job: JobContext) -> dict[str, Any]:
    contact = store.get(ContactRecord, job.tenant_id, store.contact_key(payload.contact_id))
    if contact is None:
        raise PermanentError(f"contact {payload.contact_id!r} not found")
    if payload.template:
        message = Message.from_template(payload.template, {"name": contact.name, **payload.context})
    else:
        message = Message(subject=payload.subject or "", text=payload.text or "")
    key = f"dlv#{job.job_id}"
    log = store.get(DeliveryLogRecord, job.tenant_id, key, consistent=True) or DeliveryLogRecord(
        job.tenant_id, key, contact_id=payload.contact_id, attempts=[]
    )
    model = store.table(DeliveryLogRecord)
    keep = [
        model.contact_id.set(payload.contact_id),
        model.expires_at.set(int((store.utcnow() + store.RETENTION).timestamp())),
    ]
    earlier = list(log.attempts or [])
    outcome = deliver(log, contact, message, job, source={"job_id": job.job_id}, on_delivered=keep)
    if outcome.delivered is None:
        store.record_attempts(log, outcome.new_attempts, extra=keep)
        if outcome.opted_out_of_all:
            return {**outcome.as_result(), "skipped": "the contact opted out of every channel"}
        raise PermanentError(undeliverable([*earlier, *outcome.new_attempts]))
    return outcome.as_result()


def undeliverable(attempts: list[store.Attempt]) -> str:
    tried = "; ".join(f"{a.channel} {a.status} ({a.detail})" for a in attempts)
    return f"no channel could deliver: {tried or 'the contact has no channels'}"
