"""The `notification.send` job type: one notification to one contact over their preferred channels.

Two kinds of payload: ad-hoc content (a template with its context, or a subject and a text), as POST
/v1/notifications enqueues it; or an item of a capability above notify (`reminder_id`: content and validity come
from the reminder and its source, re-checked right before sending by the reminders capability, which registered
itself with `service.on_behalf_of`). Every job keeps its per-channel record in a delivery log keyed by its id.
Ad-hoc jobs go to the `notifications` queue; the reminder sweep puts its jobs on `reminders`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from conveyor import email
from conveyor.jobs import JobContext, RetryPolicy, Scopes, job_type
from conveyor.notify import service
from conveyor.notify.domain import ID_PATTERN, SEND_JOB_TYPE, Message, require_content, undeliverable
from conveyor.platform.errors import PermanentError

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class NotificationContent(BaseModel):
    """Send now over the contact's preferred channels: a template with its context, or a subject and text."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    template: str | None = Field(default=None, examples=["welcome"])
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("template")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in email.template_names():
            raise ValueError(f"unknown template; available: {', '.join(sorted(email.template_names()))}")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> NotificationContent:
        require_content(self.template, self.subject, self.text)
        return self


class NotificationPayload(NotificationContent):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"contact_id": "c_ann", "subject": "Your order shipped", "text": "It arrives on Tuesday."}]
        },
    )

    reminder_id: str | None = Field(default=None, max_length=300, description="Set by the reminder sweep")

    @model_validator(mode="after")
    def _has_content(self) -> NotificationPayload:  # overrides the content's check: a reminder brings its own
        if self.reminder_id is None:
            require_content(self.template, self.subject, self.text)
        return self


@job_type(
    SEND_JOB_TYPE,
    queue="notifications",
    payload=NotificationPayload,
    retry=RetryPolicy(max_attempts=5, base_seconds=30, cap_seconds=600),
    # Over /v1/jobs as over /v1/notifications: messaging a tenant's contacts needs reminders:write, reading
    # what was sent to them needs reminders:read.
    scopes=Scopes(read="reminders:read", write="reminders:write"),
)
def send_notification(payload: NotificationPayload, job: JobContext) -> dict[str, Any]:
    if payload.reminder_id is not None:
        return service.source("reminder")(payload.reminder_id, job)
    return _send_adhoc(payload, job)


def _send_adhoc(payload: NotificationPayload, job: JobContext) -> dict[str, Any]:
    contact = service.find_contact(job.tenant_id, payload.contact_id)
    if contact is None or contact.deleted_at is not None:
        raise PermanentError(f"contact {payload.contact_id!r} not found (or deleted in its CRM)")
    if payload.template:
        message = service.message_from_template(payload.template, {"name": contact.name, **payload.context})
    else:
        message = Message(subject=payload.subject or "", text=payload.text or "")
    outcome = service.deliver(contact, message, job, source={"job_id": job.job_id})
    if outcome.delivered is None:
        if outcome.opted_out_of_all:
            return {**outcome.as_result(), "skipped": "the contact opted out of every channel"}
        raise PermanentError(undeliverable(outcome.history))
    return outcome.as_result()
