"""Reminder planning and checking, shared by the API (on every change), the sweep and the worker.

Planning is idempotent: reminder keys are deterministic (source, revision, lead time or dose instant), so
planning the same thing twice writes nothing new. A change that moves times bumps the source's revision:
the previous revision's open reminders are cancelled and the new revision's are planned. Whatever races
past that, `check` catches: the sweep and the worker both re-check a reminder against its source before
anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from typing import Any

from conveyor import notify
from conveyor.notify import Contact
from conveyor.platform.clock import zone
from conveyor.reminders import repository
from conveyor.reminders.domain import (
    DEFAULT_LEAD_TIMES,
    Appointment,
    Medication,
    Reminder,
    ReminderState,
    Rules,
    Verdict,
)
from conveyor.reminders.timing import DoseRule, LeadTime, QuietHours, describe, parse_hhmm, send_time

MEDICATION_HORIZON = timedelta(hours=48)  # dose reminders exist this far ahead; the sweep rolls it forward...
MEDICATION_ROLL_EVERY = timedelta(hours=24)  # ...once a day, so a day-long sweep outage still loses nothing
MEDICATION_STALE_AFTER = timedelta(hours=1)  # a dose reminder later than this would risk a double dose: expired
MAX_DOSES_PER_ROLL = 200  # hourly doses over the horizon are 48; a bound, not a target


def policy(tenant_id: str) -> Rules:
    return repository.get_policy(tenant_id) or Rules()


def quiet_hours(contact: Contact) -> QuietHours | None:
    if not contact.quiet_start or not contact.quiet_end:
        return None
    return QuietHours(parse_hhmm(contact.quiet_start), parse_hhmm(contact.quiet_end))


# --- appointments --------------------------------------------------------------------------------------
def plan_appointment(appointment: Appointment, contact: Contact, rules: Rules, now: datetime) -> int:
    """Make sure the appointment's current revision has its reminders (one per lead time still ahead)."""
    return sum(repository.insert_reminder(r) for r in appointment_reminders(appointment, contact, rules, now))


def appointment_reminders(appointment: Appointment, contact: Contact, rules: Rules, now: datetime) -> list[Reminder]:
    """The reminders the appointment's current revision should have (computed, nothing written): callers plan
    before they store, so an appointment that cannot be planned is never stored."""
    if appointment.status != "scheduled":
        return []
    tz, quiet = zone(contact.timezone), quiet_hours(contact)
    appointment_id = appointment.id
    planned_reminders = []
    for text in rules.lead_times or DEFAULT_LEAD_TIMES:
        planned = LeadTime.parse(text).before(appointment.starts_at, tz)
        if planned <= now:
            continue  # this lead time has already passed (a late booking): nothing to remind of
        at = send_time(planned, tz, quiet, deadline=appointment.starts_at)
        reminder = Reminder(
            tenant_id=appointment.tenant_id,
            key=repository.appointment_reminder_key(appointment_id, appointment.revision, text),
            kind="appointment",
            source_id=appointment_id,
            revision=appointment.revision,
            contact_id=contact.id,
            template=rules.appointment_template,
            lead_time=text,
            planned_at=planned,
            remind_at=int(at.timestamp()),
            created_at=now,
            updated_at=now,
            note="moved out of quiet hours" if at != planned else None,
        )
        planned_reminders.append(reminder)
    return planned_reminders


def cancel_open(tenant_id: str, prefix: str, *, keep_revision: int | None, reason: str) -> int:
    """Cancel a source's pending/queued reminders, except those of `keep_revision`."""
    cancelled = 0
    for reminder in repository.open_reminders(tenant_id, prefix):
        if keep_revision is not None and reminder.revision == keep_revision:
            continue
        cancelled += repository.close_reminder(reminder, ReminderState.CANCELLED, reason)
    return cancelled


# --- medication schedules ------------------------------------------------------------------------------
def dose_rule(med: Medication) -> DoseRule:
    return DoseRule(
        start_date=date.fromisoformat(med.start_date),
        end_date=date.fromisoformat(med.end_date) if med.end_date else None,
        times=tuple(parse_hhmm(t) for t in med.times_of_day or ()),
        every_hours=int(med.every_hours) if med.every_hours else None,
        start_time=parse_hhmm(med.start_time or "08:00"),
    )


def fingerprint(fields: dict[str, Any]) -> str:
    """What the dose times depend on; a change of any of it re-plans (a new revision)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:32]


def check_plannable(med: Medication, now: datetime) -> None:
    """Compute the schedule's doses over a horizon, and the one after, writing nothing: raises what planning would."""
    tz, rule = zone(med.timezone), dose_rule(med)
    last = now
    for count, dose_at in enumerate(rule.doses(tz, now, now + MEDICATION_HORIZON)):
        if count >= MAX_DOSES_PER_ROLL:
            break
        last = dose_at
    rule.next_dose(tz, max(last, now + MEDICATION_HORIZON))


def roll_medication(med: Medication, template: str, now: datetime) -> int:
    """Plan the schedule's doses from its horizon to now + MEDICATION_HORIZON, then move the horizon (and its
    next roll in the due index) forward. Idempotent and safe to race: reminders are put only if absent, and the
    horizon moves only from the value this run started from."""
    tz, rule = zone(med.timezone), dose_rule(med)
    schedule_id = med.id
    start = max(med.horizon_end, now - MEDICATION_STALE_AFTER)
    until = now + MEDICATION_HORIZON
    created = 0
    last = start
    for count, dose_at in enumerate(rule.doses(tz, start, until)):
        if count >= MAX_DOSES_PER_ROLL:
            break
        reminder = Reminder(
            tenant_id=med.tenant_id,
            key=repository.medication_reminder_key(schedule_id, med.revision, dose_at),
            kind="medication",
            source_id=schedule_id,
            revision=med.revision,
            contact_id=med.contact_id,
            template=template,
            dose_at=dose_at,
            planned_at=dose_at,
            remind_at=int(dose_at.timestamp()),
            created_at=now,
            updated_at=now,
        )
        created += repository.insert_reminder(reminder)
        last = dose_at
    else:
        last = until
    upcoming = rule.next_dose(tz, last)
    next_roll = None  # the schedule has ended: it leaves the due index
    if upcoming is not None:
        # Roll again a day from now, or when the next dose comes within the horizon if that is later; never in
        # the same minute (a bounded roll that stopped at MAX_DOSES_PER_ROLL continues on the next sweep).
        next_roll = max(
            last - MEDICATION_HORIZON + MEDICATION_ROLL_EVERY, upcoming - MEDICATION_HORIZON, now + timedelta(minutes=1)
        )
    repository.advance_horizon(med, last, next_roll, now)
    return created


# --- the check before sending --------------------------------------------------------------------------
def check(reminder: Reminder, now: datetime, *, quiet: bool = True) -> Verdict:
    """Is this reminder still worth sending now, and with what? Reads its source and its contact.
    With `quiet`, an appointment reminder that would arrive in the contact's quiet hours is deferred."""
    if reminder.kind == "appointment":
        return _check_appointment(reminder, now, quiet)
    return _check_medication(reminder, now)


def _check_appointment(reminder: Reminder, now: datetime, quiet: bool) -> Verdict:
    appointment = repository.get_appointment(reminder.tenant_id, reminder.source_id, consistent=True)
    if appointment is None:
        return Verdict("cancel", "the appointment no longer exists")
    if appointment.status != "scheduled":
        return Verdict("cancel", f"the appointment is {appointment.status}")
    if appointment.revision != reminder.revision:
        return Verdict("cancel", "the appointment was rescheduled")
    if now >= appointment.starts_at:
        return Verdict("expire", "the appointment had already started")
    contact = notify.find_contact(reminder.tenant_id, appointment.contact_id)
    if contact is None:
        return Verdict("cancel", "the contact no longer exists")
    tz = zone(contact.timezone)
    at = send_time(now, tz, quiet_hours(contact) if quiet else None, deadline=appointment.starts_at)
    if at > now:
        return Verdict("defer", "moved out of quiet hours", until=at)
    context = {
        "name": contact.name,
        "subject_name": appointment.subject_name,
        "starts_at_local": describe(appointment.starts_at, tz),
        "location": appointment.location,
    }
    return Verdict("send", contact=contact, template=reminder.template, context=context)


def _check_medication(reminder: Reminder, now: datetime) -> Verdict:
    med = repository.get_medication(reminder.tenant_id, reminder.source_id, consistent=True)
    if med is None:
        return Verdict("cancel", "the medication schedule was deleted")
    if med.revision != reminder.revision:
        return Verdict("cancel", "the medication schedule changed")
    dose_at = reminder.dose_at or reminder.planned_at
    if now > dose_at + MEDICATION_STALE_AFTER:
        return Verdict("expire", f"more than {int(MEDICATION_STALE_AFTER.total_seconds() // 60)} minutes past the dose")
    contact = notify.find_contact(reminder.tenant_id, med.contact_id)
    if contact is None:
        return Verdict("cancel", "the contact no longer exists")
    tz = zone(contact.timezone)
    context = {
        "name": contact.name,
        "medication": med.medication,
        "dose": med.dose,
        "dose_time_local": describe(dose_at, tz),
    }
    return Verdict("send", contact=contact, template=reminder.template, context=context)
