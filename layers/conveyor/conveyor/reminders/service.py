"""Reminder use cases behind the HTTP API. Every function takes the caller's tenant; nothing crosses tenants:
another tenant's ids are simply not found (404)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from conveyor import notify
from conveyor.notify import Contact
from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import decode_cursor, encode_cursor
from conveyor.platform.errors import BadRequest, InvalidCursor, InvalidState, NotFound
from conveyor.reminders import planning, repository
from conveyor.reminders.domain import Appointment, Medication, Reminder, Rules

MAX_APPOINTMENT_REMINDERS = 100


def _contact(tenant_id: str, contact_id: str) -> Contact:
    return notify.get_contact(tenant_id, contact_id)


# --- appointments -------------------------------------------------------------------------------------
def put_appointment(
    tenant_id: str,
    appointment_id: str,
    *,
    contact_id: str,
    subject_name: str,
    starts_at: datetime,
    location: str | None,
    status: str,
) -> tuple[Appointment, Contact, bool]:
    """Create or replace. A new start time, contact or a return to `scheduled` re-plans the reminders (the old
    ones are cancelled); cancelled or completed cancels them; any other edit keeps them."""
    now = utcnow()
    contact = _contact(tenant_id, contact_id)
    existing = repository.get_appointment(tenant_id, appointment_id, consistent=True)
    starts_at = starts_at.astimezone(UTC)
    revision = existing.revision if existing else 0
    if (
        existing is None
        or existing.starts_at != starts_at
        or existing.contact_id != contact_id
        or (existing.status != "scheduled" and status == "scheduled")
    ):
        revision += 1
    appointment = Appointment(
        tenant_id=tenant_id,
        id=appointment_id,
        contact_id=contact_id,
        subject_name=subject_name,
        starts_at=starts_at,
        status=status,
        revision=revision,
        created_at=existing.created_at if existing else now,
        updated_at=now,
        location=location,
    )
    # Plan before storing: what cannot be planned is refused, never stored.
    planned = planning.appointment_reminders(appointment, contact, planning.policy(tenant_id), now)
    if not repository.put_appointment(appointment, replaces=existing):
        raise InvalidState("the appointment changed while this request was applied; retry")

    scheduled = status == "scheduled"
    reason = "the appointment was rescheduled" if scheduled else f"the appointment is {status}"
    planning.cancel_open(
        tenant_id,
        repository.appointment_reminders_prefix(appointment_id),
        keep_revision=revision if scheduled else None,
        reason=reason,
    )
    for reminder in planned:
        repository.insert_reminder(reminder)
    return appointment, contact, existing is None


def get_appointment(tenant_id: str, appointment_id: str) -> tuple[Appointment, Contact | None]:
    appointment = _require_appointment(tenant_id, appointment_id)
    return appointment, notify.find_contact(tenant_id, appointment.contact_id)


def _require_appointment(tenant_id: str, appointment_id: str) -> Appointment:
    appointment = repository.get_appointment(tenant_id, appointment_id)
    if appointment is None:
        raise NotFound(f"appointment {appointment_id!r} not found")
    return appointment


def appointment_reminders(tenant_id: str, appointment_id: str) -> list[Reminder]:
    """The appointment's reminders, current revision last, each revision in send-time order (the latest
    MAX_APPOINTMENT_REMINDERS, if it was rescheduled very often)."""
    _require_appointment(tenant_id, appointment_id)
    items = repository.reminders_under(
        tenant_id, repository.appointment_reminders_prefix(appointment_id), limit=MAX_APPOINTMENT_REMINDERS
    )
    return sorted(items, key=lambda r: (r.revision, r.remind_at))


# --- medication schedules -----------------------------------------------------------------------------
def put_medication(
    tenant_id: str,
    schedule_id: str,
    *,
    contact_id: str,
    medication: str,
    dose: str,
    times_of_day: list[str] | None,
    every_hours: int | None,
    start_time: str,
    start_date: date,
    end_date: date | None,
) -> tuple[Medication, bool]:
    """Create or replace. A change to when doses happen (or to the contact's zone) re-plans: the previous
    revision's open reminders are cancelled and the next MEDICATION_HORIZON of doses is planned now."""
    now = utcnow()
    contact = _contact(tenant_id, contact_id)
    existing = repository.get_medication(tenant_id, schedule_id, consistent=True)
    timing_fields: dict[str, Any] = {
        "contact_id": contact_id,
        "times_of_day": times_of_day,
        "every_hours": every_hours,
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat() if end_date else None,
    }
    if every_hours:
        timing_fields["start_time"] = start_time
    fingerprint = planning.fingerprint({**timing_fields, "timezone": contact.timezone})
    replan = existing is None or existing.fingerprint != fingerprint
    # A schedule created again under a deleted one's id continues its revisions: its reminders' keys (and the
    # jobs keyed by them) never collide with the cancelled reminders of the deleted schedule.
    base = (
        existing.revision
        if existing
        else repository.last_reminder_revision(tenant_id, repository.medication_reminders_prefix(schedule_id))
    )
    revision = base + (1 if replan else 0)
    kept_horizon = existing.horizon_end if existing else now
    med = Medication(
        tenant_id=tenant_id,
        id=schedule_id,
        contact_id=contact_id,
        medication=medication,
        dose=dose,
        start_date=start_date.isoformat(),
        timezone=contact.timezone,
        revision=revision,
        fingerprint=fingerprint,
        horizon_end=now if replan else kept_horizon,
        created_at=existing.created_at if existing else now,
        updated_at=now,
        times_of_day=tuple(times_of_day) if times_of_day else None,
        every_hours=every_hours,
        start_time=start_time if every_hours else None,
        end_date=end_date.isoformat() if end_date else None,
        due_at=int(now.timestamp()) if replan else (existing.due_at if existing else None),
    )
    planning.check_plannable(med, now)  # before storing: a schedule that cannot be planned is never stored
    if not repository.put_medication(med, replaces=existing):
        raise InvalidState("the medication schedule changed while this request was applied; retry")
    if replan:
        planning.cancel_open(
            tenant_id,
            repository.medication_reminders_prefix(schedule_id),
            keep_revision=revision,
            reason="the medication schedule changed",
        )
        # Plan the first horizon now (the sweep would within a minute; the caller sees the reminders at once).
        planning.roll_medication(med, planning.policy(tenant_id).medication_template, now)
        med = repository.get_medication(tenant_id, schedule_id, consistent=True) or med
    return med, existing is None


def get_medication(tenant_id: str, schedule_id: str) -> Medication:
    med = repository.get_medication(tenant_id, schedule_id)
    if med is None:
        raise NotFound(f"medication schedule {schedule_id!r} not found")
    return med


def delete_medication(tenant_id: str, schedule_id: str) -> None:
    med = repository.get_medication(tenant_id, schedule_id, consistent=True)
    if med is None or not repository.delete_medication(med):
        raise NotFound(f"medication schedule {schedule_id!r} not found")
    planning.cancel_open(
        tenant_id,
        repository.medication_reminders_prefix(schedule_id),
        keep_revision=None,
        reason="the medication schedule was deleted",
    )


# --- reminders ----------------------------------------------------------------------------------------
def list_reminders(
    tenant_id: str, *, state: str | None, start: datetime | None, end: datetime | None, limit: int, cursor: str | None
) -> tuple[list[Reminder], str | None]:
    start = start or datetime(1970, 1, 1, tzinfo=UTC)
    end = end or datetime(9999, 1, 1, tzinfo=UTC)
    if end < start:
        raise BadRequest("`to` is before `from`")
    items, last = repository.reminders_between(tenant_id, start, end, state=state, limit=limit, after=_after(cursor))
    return items, (encode_cursor(sk=last[0], at=str(last[1])) if last else None)


def _after(cursor: str | None) -> tuple[str, int] | None:
    fields = decode_cursor(cursor, {"sk": "rem#", "at": ""})
    if fields is None:
        return None
    if not fields["at"].isdigit():
        raise InvalidCursor("invalid cursor")
    return fields["sk"], int(fields["at"])


# --- policy -------------------------------------------------------------------------------------------
def get_policy(tenant_id: str) -> Rules:
    return planning.policy(tenant_id)


def put_policy(tenant_id: str, rules: Rules) -> Rules:
    """Applies to reminders planned from now on (new or rescheduled appointments, new medication doses)."""
    repository.put_policy(tenant_id, rules, utcnow())
    return rules


# --- a contact's changes (notify tells) -----------------------------------------------------------------
def contact_changed(before: Contact | None, after: Contact) -> None:
    """A contact's new time zone moves their doses: an 08:00 dose stays 08:00 on the contact's (new) clock.
    Each of their schedules is re-planned as a PUT of the same schedule would (the zone is part of its
    fingerprint): a new revision, the old revision's open reminders cancelled, the next horizon planned.
    Appointment reminders keep their instants (an appointment is an instant, not a wall-clock time); their
    quiet hours and the local time in their text follow the contact's zone when they are swept and sent."""
    if before is None or before.timezone == after.timezone:
        return
    for med in repository.medications_of(after.tenant_id, after.id):
        put_medication(
            after.tenant_id,
            med.id,
            contact_id=med.contact_id,
            medication=med.medication,
            dose=med.dose,
            times_of_day=list(med.times_of_day) if med.times_of_day else None,
            every_hours=med.every_hours,
            start_time=med.start_time or "08:00",
            start_date=date.fromisoformat(med.start_date),
            end_date=date.fromisoformat(med.end_date) if med.end_date else None,
        )
