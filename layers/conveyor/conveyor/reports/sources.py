"""The built-in report types. Each reads its capability's data through that capability's public API only
(conveyor.jobs, conveyor.notify, conveyor.reminders, conveyor.webhooks), one page at a time, from an opaque
cursor: the pager's cursor is the capability's own page cursor (or, where one report walks several lists, a
small JSON of which list and that list's cursor).

Filters are pydantic models (extra fields refused); instants without an offset are wall-clock time in the
report's time zone; `from` is inclusive and `to` exclusive.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.reports.domain import Column, Kind, ReportContext, Row, local_instant
from conveyor.reports.registry import report_type

D, INT, B = Kind.DATETIME, Kind.INTEGER, Kind.BOOLEAN


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TimeRange(_Filters):
    from_: datetime | None = Field(default=None, alias="from", description="Inclusive; local time if no offset")
    to: datetime | None = Field(default=None, description="Exclusive; local time if no offset")

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.from_ and self.to and _aware(self.to) <= _aware(self.from_):
            raise ValueError("`to` must be after `from`")
        return self

    def bounds(self, tz: str) -> tuple[datetime | None, datetime | None]:
        return (
            local_instant(self.from_, tz) if self.from_ else None,
            local_instant(self.to, tz) if self.to else None,
        )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # ordering only; the zone is applied later


def _epoch(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


# --- jobs ------------------------------------------------------------------------------------------------------
JobState = Literal["scheduled", "queued", "active", "retrying", "completed", "failed", "cancelled"]


class JobFilters(TimeRange):
    state: JobState | None = None
    type: str | None = Field(default=None, max_length=100)


JOB_COLUMNS = (
    Column("job_id"),
    Column("type"),
    Column("queue"),
    Column("state"),
    Column("attempts", INT),
    Column("max_attempts", INT),
    Column("created_at", D),
    Column("started_at", D),
    Column("finished_at", D),
    Column("error_type"),
    Column("error_message"),
    Column("process_id"),
)


def _caller(ctx: ReportContext) -> Any:
    from conveyor.platform.auth.keys import Principal

    return Principal(tenant_id=ctx.tenant_id, scopes=ctx.scopes, key_id="report")


def _jobs_page(tenant_id: str, f: Any, cursor: str | None, limit: int, ctx: ReportContext, *, job_type: Any) -> Any:
    from conveyor import jobs

    start, end = f.bounds(ctx.timezone)
    return jobs.list_jobs(
        tenant_id,
        state=f.state,
        job_type=job_type,
        limit=limit,
        cursor=cursor,
        created_from=start,
        created_before=end,
        oldest_first=True,
        caller=_caller(ctx),  # the types the report's creator may not read are left out, as over /v1/jobs
    )


@report_type("jobs", title="Jobs", scope="jobs:read", filters=JobFilters, columns=JOB_COLUMNS)
def jobs_pages(tenant_id: str, f: JobFilters, cursor: str | None, limit: int, ctx: ReportContext):
    items, nxt = _jobs_page(tenant_id, f, cursor, limit, ctx, job_type=f.type)
    rows: list[Row] = [
        (
            j.id,
            j.type,
            j.queue,
            j.state,
            j.attempts,
            j.max_attempts,
            j.created_at,
            j.started_at,
            j.finished_at,
            j.error.type if j.error else None,
            j.error.message if j.error else None,
            j.process_id,
        )
        for j in items
    ]
    return rows, nxt


# --- notifications (notification.send jobs and what they delivered) --------------------------------------------
class NotificationFilters(TimeRange):
    state: JobState | None = None


NOTIFICATION_COLUMNS = (
    Column("job_id"),
    Column("contact_id"),
    Column("reminder_id"),
    Column("state"),
    Column("delivered_via"),
    Column("channels_tried"),
    Column("attempts", INT),
    Column("created_at", D),
    Column("finished_at", D),
    Column("error"),
)


@report_type(
    "notifications", title="Notifications", scope="reminders:read", filters=NotificationFilters,
    columns=NOTIFICATION_COLUMNS,
)  # fmt: skip
def notifications_pages(tenant_id: str, f: NotificationFilters, cursor: str | None, limit: int, ctx: ReportContext):
    from conveyor import notify

    items, nxt = _jobs_page(tenant_id, f, cursor, limit, ctx, job_type=notify.SEND_JOB_TYPE)
    rows: list[Row] = []
    for j in items:
        result = j.result if isinstance(j.result, dict) else {}
        tried = [a.get("channel") for a in result.get("attempts") or [] if isinstance(a, dict)]
        rows.append(
            (
                j.id,
                j.payload.get("contact_id"),
                j.payload.get("reminder_id"),
                j.state,
                result.get("delivered_via"),
                sorted({t for t in tried if t}),
                j.attempts,
                j.created_at,
                j.finished_at,
                (j.error.message if j.error else result.get("skipped")),
            )
        )
    return rows, nxt


# --- reminders -------------------------------------------------------------------------------------------------
ReminderStateName = Literal["pending", "queued", "sent", "failed", "skipped", "expired", "cancelled"]


class ReminderFilters(TimeRange):
    state: ReminderStateName | None = None


REMINDER_COLUMNS = (
    Column("reminder_id"),
    Column("kind"),
    Column("source_id"),
    Column("contact_id"),
    Column("state"),
    Column("channel"),
    Column("remind_at", D),
    Column("sent_at", D),
    Column("attempts", INT),
    Column("template"),
    Column("note"),
)


def _sent_at(reminder: Any) -> datetime | None:
    return next((a.at for a in reversed(reminder.attempts) if a.status in ("sent", "delivered")), None)


def _reminders_page(tenant_id: str, f: TimeRange, cursor: str | None, limit: int, ctx: ReportContext, state: Any):
    from conveyor import reminders

    start, end = f.bounds(ctx.timezone)
    if end is not None:
        end = end.fromtimestamp(end.timestamp() - 1, UTC)  # `to` is exclusive; the index's range is inclusive
    return reminders.list_reminders(tenant_id, state=state, start=start, end=end, limit=limit, cursor=cursor)


@report_type("reminders", title="Reminders", scope="reminders:read", filters=ReminderFilters, columns=REMINDER_COLUMNS)
def reminders_pages(tenant_id: str, f: ReminderFilters, cursor: str | None, limit: int, ctx: ReportContext):
    items, nxt = _reminders_page(tenant_id, f, cursor, limit, ctx, f.state)
    rows: list[Row] = [
        (
            r.id,
            r.kind,
            r.source_id,
            r.contact_id,
            r.state,
            r.delivered_via,
            _epoch(r.remind_at),
            _sent_at(r),
            len(r.attempts),
            r.template,
            r.note,
        )
        for r in items
    ]
    return rows, nxt


# --- appointments (one row per appointment reminder, with its appointment) -------------------------------------
class AppointmentFilters(TimeRange):
    reminder_state: ReminderStateName | None = None


APPOINTMENT_COLUMNS = (
    Column("appointment_id"),
    Column("subject_name"),
    Column("starts_at", D),
    Column("status"),
    Column("location"),
    Column("contact_id"),
    Column("reminder_lead_time"),
    Column("reminder_state"),
    Column("reminder_at", D),
    Column("reminder_sent_at", D),
    Column("reminder_channel"),
)


@report_type(
    "appointments", title="Appointments and their reminders", scope="reminders:read", filters=AppointmentFilters,
    columns=APPOINTMENT_COLUMNS,
)  # fmt: skip
def appointments_pages(tenant_id: str, f: AppointmentFilters, cursor: str | None, limit: int, ctx: ReportContext):
    """By the reminders' send times in the range (appointment reminders only), each with its appointment."""
    from conveyor import reminders

    items, nxt = _reminders_page(tenant_id, f, cursor, limit, ctx, f.reminder_state)
    seen: dict[str, Any] = {}
    rows: list[Row] = []
    for r in items:
        if r.kind != "appointment":
            continue
        if r.source_id not in seen:
            seen[r.source_id] = reminders.find_appointment(tenant_id, r.source_id)
        a = seen[r.source_id]
        rows.append(
            (
                r.source_id,
                a.subject_name if a else None,
                a.starts_at if a else None,
                a.status if a else "deleted",
                a.location if a else None,
                r.contact_id,
                r.lead_time,
                r.state,
                _epoch(r.remind_at),
                _sent_at(r),
                r.delivered_via,
            )
        )
    return rows, nxt


# --- contacts ----------------------------------------------------------------------------------------------------
class ContactFilters(_Filters):
    channel: Literal["email", "sms", "in_app"] | None = Field(default=None, description="Contacts who use it")
    name_prefix: str | None = Field(default=None, max_length=100)


CONTACT_COLUMNS = (
    Column("contact_id"),
    Column("name"),
    Column("email"),
    Column("phone"),
    Column("timezone"),
    Column("channels"),
    Column("opted_out"),
    Column("created_at", D),
    Column("updated_at", D),
)


@report_type("contacts", title="Contacts", scope="reminders:read", filters=ContactFilters, columns=CONTACT_COLUMNS)
def contacts_pages(tenant_id: str, f: ContactFilters, cursor: str | None, limit: int, ctx: ReportContext):
    from conveyor import notify

    items, nxt = notify.contacts_page(tenant_id, after=cursor, limit=min(limit, 100))
    rows: list[Row] = [
        (c.id, c.name, c.email, c.phone, c.timezone, list(c.channels), list(c.opted_out), c.created_at, c.updated_at)
        for c in items
        if (not f.channel or f.channel in c.channels)
        and (not f.name_prefix or (c.name or "").startswith(f.name_prefix))
    ]
    return rows, nxt


# --- webhook deliveries -------------------------------------------------------------------------------------------
class WebhookDeliveryFilters(TimeRange):
    subscription_id: str | None = Field(default=None, max_length=64, description="One subscription, else all")
    status: Literal["pending", "delivered", "failed", "skipped"] | None = None
    event_type: str | None = Field(default=None, max_length=100)


WEBHOOK_COLUMNS = (
    Column("delivery_id"),
    Column("subscription_id"),
    Column("event_id"),
    Column("event_type"),
    Column("status"),
    Column("attempts", INT),
    Column("last_status_code", INT),
    Column("last_error"),
    Column("created_at", D),
    Column("updated_at", D),
    Column("test", B),
)


@report_type(
    "webhook-deliveries", title="Webhook deliveries", scope="webhooks:read", filters=WebhookDeliveryFilters,
    columns=WEBHOOK_COLUMNS,
)  # fmt: skip
def webhook_pages(tenant_id: str, f: WebhookDeliveryFilters, cursor: str | None, limit: int, ctx: ReportContext):
    """Subscription by subscription (id order), each newest delivery first; the cursor names the subscription
    and its page cursor."""
    from conveyor import webhooks

    if f.subscription_id:
        subs = [f.subscription_id]
    else:
        subs = sorted(s.id for s in webhooks.subscriptions(tenant_id))
    at = json.loads(cursor) if cursor else {"s": subs[0] if subs else None, "c": None}
    if at["s"] is None or at["s"] not in subs:
        return [], None
    start, end = f.bounds(ctx.timezone)
    items, inner = webhooks.deliveries_page(
        tenant_id, at["s"], status=f.status, event_type=f.event_type, limit=min(limit, 100), cursor=at["c"]
    )
    rows: list[Row] = []
    for d in items:
        if (start and d.created_at < start) or (end and d.created_at >= end):
            continue
        last = d.attempts[-1] if d.attempts else None
        rows.append(
            (
                d.id,
                d.subscription_id,
                d.event_id,
                d.event_type,
                d.status.value,
                d.attempt_count,
                last.status_code if last else None,
                (last.message or (last.error.value if last.error else None)) if last else None,
                d.created_at,
                d.updated_at,
                d.test,
            )
        )
    if inner is not None:
        return rows, json.dumps({"s": at["s"], "c": inner})
    following = subs.index(at["s"]) + 1
    return rows, (json.dumps({"s": subs[following], "c": None}) if following < len(subs) else None)
