"""Reminder use cases behind the HTTP API. Every function takes the caller's tenant; nothing crosses tenants:
another tenant's ids are simply not found (404)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from conveyor import jobs
from conveyor.platform.errors import BadRequest, Conflict, NotFound
from conveyor.reminders import planning, store
from conveyor.reminders.models import (
    Appointment,
    AppointmentIn,
    Contact,
    ContactIn,
    FeedItem,
    FeedPage,
    MedicationSchedule,
    MedicationScheduleIn,
    NotificationRequest,
    Reminder,
    ReminderPage,
    ReminderPolicy,
    ReminderTemplates,
)
from conveyor.reminders.store import (
    AppointmentRecord,
    ContactRecord,
    FeedItemRecord,
    MedicationRecord,
    PolicyRecord,
    ReminderRecord,
    utcnow,
)
from conveyor.reminders.timing import zone

MAX_APPOINTMENT_REMINDERS = 100


# --- contacts -----------------------------------------------------------------------------------------
def put_contact(tenant_id: str, contact_id: str, body: ContactIn) -> tuple[Contact, bool]:
    now = utcnow()
    existing = store.get(ContactRecord, tenant_id, store.contact_key(contact_id), consistent=True)
    record = ContactRecord(
        tenant_id,
        store.contact_key(contact_id),
        name=body.name,
        email=body.email,
        phone=body.phone,
        timezone=body.timezone,
        channels=list(body.channels),
        opted_out=list(body.opted_out),
        quiet_start=body.quiet_hours.start if body.quiet_hours else None,
        quiet_end=body.quiet_hours.end if body.quiet_hours else None,
        created_at=existing.created_at if existing else now,
        updated_at=now,
    )
    model = store.table(ContactRecord)
    expected = model.sk.does_not_exist() if existing is None else (model.updated_at == existing.updated_at)
    if not store.put(record, expected):
        raise Conflict("the contact changed while this request was applied; retry")
    if existing is not None and existing.timezone != record.timezone:
        _replan_medications(tenant_id, contact_id)
    return Contact.of(record), existing is None


def _replan_medications(tenant_id: str, contact_id: str) -> None:
    """A contact's new time zone moves their doses: an 08:00 dose stays 08:00 on the contact's (new) clock.
    Each of their schedules is re-planned as a PUT of the same schedule would (the zone is part of its
    fingerprint): a new revision, the old revision's open reminders cancelled, the next horizon planned.
    Appointment reminders keep their instants (an appointment is an instant, not a wall-clock time); their
    quiet hours and the local time in their text follow the contact's zone when they are swept and sent."""
    schedules, _ = store.query_prefix(MedicationRecord, tenant_id, store.medication_key(""))
    for med in schedules:
        if med.contact_id == contact_id:
            body = MedicationScheduleIn.model_validate(
                _medication(med).model_dump(include=set(MedicationScheduleIn.model_fields))
            )
            put_medication(tenant_id, med.sk.removeprefix("med#"), body)


def _contact(tenant_id: str, contact_id: str) -> ContactRecord:
    record = store.get(ContactRecord, tenant_id, store.contact_key(contact_id))
    if record is None:
        raise NotFound(f"contact {contact_id!r} not found")
    return record


def get_contact(tenant_id: str, contact_id: str) -> Contact:
    return Contact.of(_contact(tenant_id, contact_id))


# --- appointments -------------------------------------------------------------------------------------
def _appointment(record: AppointmentRecord, contact: ContactRecord | None) -> Appointment:
    tz = zone(contact.timezone) if contact else UTC
    return Appointment(
        id=record.sk.removeprefix("appt#"),
        contact_id=record.contact_id,
        subject_name=record.subject_name,
        starts_at=record.starts_at,
        starts_at_local=record.starts_at.astimezone(tz).isoformat(),
        location=record.location,
        status=record.status,
        revision=int(record.revision),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def put_appointment(tenant_id: str, appointment_id: str, body: AppointmentIn) -> tuple[Appointment, bool]:
    """Create or replace. A new start time, contact or a return to `scheduled` re-plans the reminders (the old
    ones are cancelled); cancelled or completed cancels them; any other edit keeps them."""
    now = utcnow()
    contact = _contact(tenant_id, body.contact_id)
    key = store.appointment_key(appointment_id)
    existing = store.get(AppointmentRecord, tenant_id, key, consistent=True)
    starts_at = body.starts_at.astimezone(UTC)
    revision = int(existing.revision) if existing else 0
    if (
        existing is None
        or existing.starts_at != starts_at
        or existing.contact_id != body.contact_id
        or (existing.status != "scheduled" and body.status == "scheduled")
    ):
        revision += 1
    record = AppointmentRecord(
        tenant_id,
        key,
        contact_id=body.contact_id,
        subject_name=body.subject_name,
        starts_at=starts_at,
        location=body.location,
        status=body.status,
        revision=revision,
        created_at=existing.created_at if existing else now,
        updated_at=now,
    )
    # Plan (and shape the answer) before storing: what cannot be planned or shown is refused, never stored.
    answer = _appointment(record, contact)
    planned = planning.appointment_reminders(record, contact, planning.policy(tenant_id), now)
    model = store.table(AppointmentRecord)
    expected = model.sk.does_not_exist() if existing is None else (model.updated_at == existing.updated_at)
    if not store.put(record, expected):
        raise Conflict("the appointment changed while this request was applied; retry")

    scheduled = body.status == "scheduled"
    reason = "the appointment was rescheduled" if scheduled else f"the appointment is {body.status}"
    planning.cancel_open(
        tenant_id,
        store.appointment_reminders_prefix(appointment_id),
        keep_revision=revision if scheduled else None,
        reason=reason,
    )
    for reminder in planned:
        store.insert_reminder(reminder)
    return answer, existing is None


def get_appointment(tenant_id: str, appointment_id: str) -> Appointment:
    record = _require_appointment(tenant_id, appointment_id)
    return _appointment(record, store.get(ContactRecord, tenant_id, store.contact_key(record.contact_id)))


def _require_appointment(tenant_id: str, appointment_id: str) -> AppointmentRecord:
    record = store.get(AppointmentRecord, tenant_id, store.appointment_key(appointment_id))
    if record is None:
        raise NotFound(f"appointment {appointment_id!r} not found")
    return record


def appointment_reminders(tenant_id: str, appointment_id: str) -> list[Reminder]:
    """The appointment's reminders, current revision last, each revision in send-time order (the latest
    MAX_APPOINTMENT_REMINDERS, if it was rescheduled very often)."""
    _require_appointment(tenant_id, appointment_id)
    items, _ = store.query_prefix(
        ReminderRecord,
        tenant_id,
        store.appointment_reminders_prefix(appointment_id),
        newest_first=True,
        limit=MAX_APPOINTMENT_REMINDERS,
    )
    return [Reminder.of(r) for r in sorted(items, key=lambda r: (int(r.revision), int(r.remind_at)))]


# --- medication schedules -----------------------------------------------------------------------------
def _medication(record: MedicationRecord) -> MedicationSchedule:
    return MedicationSchedule(
        id=record.sk.removeprefix("med#"),
        contact_id=record.contact_id,
        medication=record.medication,
        dose=record.dose,
        times_of_day=list(record.times_of_day) if record.times_of_day else None,
        every_hours=int(record.every_hours) if record.every_hours else None,
        start_time=record.start_time or "08:00",
        start_date=record.start_date,
        end_date=record.end_date,
        timezone=record.timezone,
        revision=int(record.revision),
        planned_until=record.horizon_end,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def put_medication(tenant_id: str, schedule_id: str, body: MedicationScheduleIn) -> tuple[MedicationSchedule, bool]:
    """Create or replace. A change to when doses happen (or to the contact's zone) re-plans: the previous
    revision's open reminders are cancelled and the next MEDICATION_HORIZON of doses is planned now."""
    now = utcnow()
    contact = _contact(tenant_id, body.contact_id)
    key = store.medication_key(schedule_id)
    existing = store.get(MedicationRecord, tenant_id, key, consistent=True)
    timing_fields = body.model_dump(
        mode="json", include={"contact_id", "times_of_day", "every_hours", "start_date", "end_date"}
    )
    if body.every_hours:
        timing_fields["start_time"] = body.start_time
    fingerprint = planning.fingerprint({**timing_fields, "timezone": contact.timezone})
    replan = existing is None or existing.fingerprint != fingerprint
    # A schedule created again under a deleted one's id continues its revisions: its reminders' keys (and the
    # jobs keyed by them) never collide with the cancelled reminders of the deleted schedule.
    base = (
        int(existing.revision)
        if existing
        else store.last_reminder_revision(tenant_id, store.medication_reminders_prefix(schedule_id))
    )
    revision = base + (1 if replan else 0)
    record = MedicationRecord(
        tenant_id,
        key,
        contact_id=body.contact_id,
        medication=body.medication,
        dose=body.dose,
        times_of_day=body.times_of_day,
        every_hours=body.every_hours,
        start_time=body.start_time if body.every_hours else None,
        start_date=body.start_date.isoformat(),
        end_date=body.end_date.isoformat() if body.end_date else None,
        timezone=contact.timezone,
        revision=revision,
        fingerprint=fingerprint,
        horizon_end=now if replan else existing.horizon_end,  # type: ignore[union-attr]
        due_shard=store.due_shard(tenant_id, key) if replan else (existing.due_shard if existing else None),
        due_at=int(now.timestamp()) if replan else (existing.due_at if existing else None),
        created_at=existing.created_at if existing else now,
        updated_at=now,
    )
    planning.check_plannable(record, now)  # before storing: a schedule that cannot be planned is never stored
    model = store.table(MedicationRecord)
    expected = model.sk.does_not_exist() if existing is None else (model.updated_at == existing.updated_at)
    if not store.put(record, expected):
        raise Conflict("the medication schedule changed while this request was applied; retry")
    if replan:
        planning.cancel_open(
            tenant_id,
            store.medication_reminders_prefix(schedule_id),
            keep_revision=revision,
            reason="the medication schedule changed",
        )
        # Plan the first horizon now (the sweep would within a minute; the caller sees the reminders at once).
        planning.roll_medication(record, planning.policy(tenant_id).medication_template, now)
        record = store.get(MedicationRecord, tenant_id, key, consistent=True) or record
    return _medication(record), existing is None


def get_medication(tenant_id: str, schedule_id: str) -> MedicationSchedule:
    record = store.get(MedicationRecord, tenant_id, store.medication_key(schedule_id))
    if record is None:
        raise NotFound(f"medication schedule {schedule_id!r} not found")
    return _medication(record)


def delete_medication(tenant_id: str, schedule_id: str) -> None:
    record = store.get(MedicationRecord, tenant_id, store.medication_key(schedule_id), consistent=True)
    if record is None or not store.delete(record, store.table(MedicationRecord).sk.exists()):
        raise NotFound(f"medication schedule {schedule_id!r} not found")
    planning.cancel_open(
        tenant_id,
        store.medication_reminders_prefix(schedule_id),
        keep_revision=None,
        reason="the medication schedule was deleted",
    )


# --- reminders ----------------------------------------------------------------------------------------
def list_reminders(
    tenant_id: str, *, state: str | None, start: datetime | None, end: datetime | None, limit: int, cursor: str | None
) -> ReminderPage:
    start = start or datetime(1970, 1, 1, tzinfo=UTC)
    end = end or datetime(9999, 1, 1, tzinfo=UTC)
    if end < start:
        raise BadRequest("`to` is before `from`")
    items, last = store.reminders_between(
        tenant_id, start, end, state=state, limit=limit, after=_decode(cursor, tenant_id)
    )
    return ReminderPage(items=[Reminder.of(r) for r in items], next_cursor=_encode(last) if last else None)


def _encode(key: dict[str, Any]) -> str:
    flat = {"sk": key["sk"]["S"], "at": key["remind_at"]["N"]}
    return base64.urlsafe_b64encode(json.dumps(flat).encode()).decode().rstrip("=")


def _decode(cursor: str | None, tenant_id: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        flat = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        sk, at = str(flat["sk"]), str(int(flat["at"]))
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise BadRequest("invalid cursor") from None
    if not sk.startswith("rem#"):
        raise BadRequest("invalid cursor")
    return {"tenant_id": {"S": tenant_id}, "sk": {"S": sk}, "remind_at": {"N": at}}


# --- policy -------------------------------------------------------------------------------------------
def get_policy(tenant_id: str) -> ReminderPolicy:
    rules = planning.policy(tenant_id)
    return ReminderPolicy(
        appointment_lead_times=list(rules.lead_times),
        templates=ReminderTemplates(appointment=rules.appointment_template, medication=rules.medication_template),
    )


def put_policy(tenant_id: str, body: ReminderPolicy) -> ReminderPolicy:
    """Applies to reminders planned from now on (new or rescheduled appointments, new medication doses)."""
    record = PolicyRecord(
        tenant_id,
        store.POLICY_KEY,
        lead_times=list(body.appointment_lead_times),
        templates=body.templates.model_dump(),
        updated_at=utcnow(),
    )
    store.put(record)
    return body


# --- notifications ------------------------------------------------------------------------------------
def send_notification(tenant_id: str, body: NotificationRequest, idempotency_key: str | None) -> tuple[jobs.Job, bool]:
    _contact(tenant_id, body.contact_id)
    request = jobs.NewJob("notification.send", payload=body.model_dump(mode="json", exclude_unset=True))
    return jobs.enqueue(tenant_id, request, idempotency_key)


def feed(tenant_id: str, contact_id: str, *, limit: int, cursor: str | None) -> FeedPage:
    _contact(tenant_id, contact_id)
    prefix = store.feed_prefix(contact_id)
    after = None
    if cursor:
        after = prefix + cursor
        if not cursor.startswith("ntf_") or "#" in cursor:
            raise BadRequest("invalid cursor")
    items, last = store.query_prefix(FeedItemRecord, tenant_id, prefix, newest_first=True, limit=limit, after=after)
    return FeedPage(items=[FeedItem.of(i) for i in items], next_cursor=last.rsplit("#", 1)[-1] if last else None)


def mark_read(tenant_id: str, contact_id: str, notification_id: str) -> FeedItem:
    model = store.table(FeedItemRecord)
    item = model(tenant_id, store.feed_prefix(contact_id) + notification_id)
    if not store.update(item, [model.read_at.set(model.read_at | utcnow())], model.sk.exists()):
        raise NotFound(f"notification {notification_id!r} not found")
    return FeedItem.of(item)
