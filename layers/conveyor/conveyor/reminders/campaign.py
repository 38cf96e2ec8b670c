"""`reminders.campaign`: one notification to every contact matching a filter, as a process in batches of 100.

The driver (`reminders.campaign.fetch`) pages through the tenant's contacts 100 at a time, keeps the matching
ones and declares each page as one batch (`p<n>`: a re-run declares the same keys, so nothing counts twice);
its cursor lives in the process context, and it continues through a checkpoint when its invocation runs
short (a batch does the same, saving its next contact and its counts so far). When the contacts are exhausted it
declares the total (the ETA becomes determinate).
Each batch (`reminders.campaign.send`) delivers to its contacts over their preferred channels (notify's
channels, with fallback) and records one outcome: delivered -> succeeded, opted out of everything or gone ->
skipped, undeliverable -> failed (with a sample). Each contact's delivery is logged under the process
(`dlv#<process>.<contact>`), so a retried or re-run batch never notifies anyone twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor import notify
from conveyor.email.templates import template_names
from conveyor.jobs.registry import Continue, JobContext, RetryPolicy, Scopes, job_type
from conveyor.notify import Contact, Message
from conveyor.platform.errors import PermanentError
from conveyor.processes import Tolerance, process_type

PAGE = 100  # contacts read per page, and so at most 100 per batch
CONTINUE_BELOW_SECONDS = 5.0  # a run with less time left than this saves its place and continues
QUEUE = "notifications"


class CampaignFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms", "in_app"] | None = Field(default=None, description="Contacts who use it")
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/London"])
    name_prefix: str | None = Field(default=None, max_length=100)

    def matches(self, contact: Contact) -> bool:
        if self.channel and self.channel not in (contact.channels or []):
            return False
        if self.timezone and contact.timezone != self.timezone:
            return False
        return not self.name_prefix or (contact.name or "").startswith(self.name_prefix)


class CampaignParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: CampaignFilter = Field(default_factory=CampaignFilter)
    template: str | None = Field(default=None, examples=["welcome"])
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    text: str | None = Field(default=None, min_length=1, max_length=2000)
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _content(self) -> CampaignParams:
        if self.template is not None and self.template not in template_names():
            raise ValueError(f"unknown template; available: {', '.join(sorted(template_names()))}")
        notify.require_content(self.template, self.subject, self.text)
        return self


class FetchPayload(BaseModel):
    process_id: str


class SendPayload(BaseModel):
    contact_ids: list[str] = Field(max_length=PAGE)


# Jobs of a process: /v1/jobs may only show or start them with the processes scopes (and a started one fails:
# it has no process).
SCOPES = Scopes(read="processes:read", write="processes:write")


def _process_of(ctx: JobContext) -> Any:
    if ctx.process is None:
        raise PermanentError("this job runs only as part of a reminders.campaign process (POST /v1/processes)")
    return ctx.process


@job_type(
    "reminders.campaign.fetch", queue=QUEUE, payload=FetchPayload, retry=RetryPolicy(max_attempts=5), scopes=SCOPES
)
def fetch(payload: FetchPayload, ctx: JobContext) -> dict[str, Any]:
    process = _process_of(ctx)
    params = CampaignParams.model_validate(process.params)
    state = process.context
    page, matched, cursor = int(state.get("page", 0)), int(state.get("matched", 0)), state.get("cursor")
    first = page
    while True:
        # at least one page per run, so a run that starts short of time still moves the cursor
        if page > first and (ctx.remaining_seconds() < CONTINUE_BELOW_SECONDS or process.stopping()):
            raise Continue({"page": page})  # the cursor is in the process context
        contacts, cursor = notify.contacts_page(ctx.tenant_id, after=cursor, limit=PAGE)
        ids = [c.id for c in contacts if params.filter.matches(c)]
        if ids:
            process.add_batches([{"contact_ids": ids}], key=f"p{page}", sizes=[len(ids)])
        page, matched = page + 1, matched + len(ids)
        process.update_context(page=page, matched=matched, cursor=cursor)
        if cursor is None:
            process.fetch_done(expected_total=matched)
            return {"contacts": matched, "pages": page}


@job_type(
    "reminders.campaign.send",
    queue=QUEUE,
    payload=SendPayload,
    retry=RetryPolicy(max_attempts=5, base_seconds=30, cap_seconds=600),
    scopes=SCOPES,
)
def send(payload: SendPayload, ctx: JobContext) -> dict[str, Any]:
    """Delivers to the batch's contacts in order; when the invocation runs short it continues through a checkpoint
    (the next contact's index and the counts so far), so a batch of slow deliveries never outlasts the worker's
    timeout. Its outcome is recorded once, by the run that reaches the end."""
    params = CampaignParams.model_validate(_process_of(ctx).params)
    saved = ctx.checkpoint if isinstance(ctx.checkpoint, dict) else {}
    first = int(saved.get("next", 0))
    succeeded, failed, skipped = (int(saved.get(name, 0)) for name in ("succeeded", "failed", "skipped"))
    errors: list[tuple[str, str]] = [(str(c), str(m)) for c, m in saved.get("errors", [])]
    for index in range(first, len(payload.contact_ids)):
        if index > first and ctx.remaining_seconds() < CONTINUE_BELOW_SECONDS:
            checkpoint = {"succeeded": succeeded, "failed": failed, "skipped": skipped, "errors": errors[:3]}
            raise Continue({"next": index, **checkpoint})
        contact_id = payload.contact_ids[index]
        result = _notify(ctx, params, contact_id)
        if result is None:
            succeeded += 1
        elif result == "skipped":
            skipped += 1
        else:
            failed += 1
            errors.append((contact_id, result))
    ctx.process.record(succeeded=succeeded, failed=failed, skipped=skipped, errors=errors)
    return {"succeeded": succeeded, "failed": failed, "skipped": skipped}


def _notify(ctx: JobContext, params: CampaignParams, contact_id: str) -> str | None:
    """None when delivered (now or by an earlier run), "skipped", or why it could not be delivered. A transient
    provider failure raises: the batch job is retried and contacts already notified are not notified again
    (each contact's delivery is logged under `<process id>.<contact id>`, whatever job delivers it)."""
    contact = notify.find_contact(ctx.tenant_id, contact_id)
    if contact is None or contact.deleted_at is not None:
        return "skipped"
    if params.template:
        message = notify.message_from_template(params.template, {"name": contact.name, **params.context})
    else:
        message = Message(subject=params.subject or "", text=params.text or "")
    per_contact = replace(ctx, job_id=f"{ctx.process.id}.{contact_id}")
    outcome = notify.delivered(per_contact) or notify.deliver(
        contact, message, per_contact, source={"job_id": ctx.job_id, "process_id": ctx.process.id}
    )
    if outcome.delivered is not None:
        return None
    if outcome.opted_out_of_all:
        return "skipped"
    return notify.undeliverable(outcome.history or outcome.new_attempts)[:300]


CAMPAIGN = process_type(
    "reminders.campaign",
    params=CampaignParams,
    driver="reminders.campaign.fetch",
    batch="reminders.campaign.send",
    tolerance=Tolerance(percent=20),  # more than a fifth undeliverable: the campaign is failed, not "done"
)
