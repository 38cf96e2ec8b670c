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
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from conveyor.reminders import store
from conveyor.reminders.store import (
    AppointmentRecord,
    ContactRecord,
    MedicationRecord,
    PolicyRecord,
    ReminderRecord,
)
from conveyor.reminders.timing import DoseRule, LeadTime, QuietHours, describe, parse_hhmm, send_time, zone

MEDICATION_HORIZON = timedelta(hours=48)  # dose reminders exist this far ahead; the sweep rolls it forward...
MEDICATION_ROLL_EVERY = timedelta(hours=24)  # ...once a day, so a day-long sweep outage still loses nothing
MEDICATION_STALE_AFTER = timedelta(hours=1)  # a dose reminder later than this would risk a double dose: expired
MAX_DOSES_PER_ROLL = 200  # hourly doses over the horizon are 48; a bound, not a target
DEFAULT_LEAD_TIMES = ("PT24H", "PT2H")
DEFAULT_TEMPLATES = {"appointment": "appointment-reminder", "medication": "medication-reminder"}


@dataclass(frozen=True)
class Rules:
    """A tenant's reminder policy as planning uses it (the API's shape is models.ReminderPolicy)."""

    lead_times: tuple[str, ...] = DEFAULT_LEAD_TIMES
    appointment_template: str = DEFAULT_TEMPLATES["appointment"]
    medication_template: str = DEFAULT_TEMPLATES["medication"]


def policy(tenant_id: str) -> Rules:
    record = store.get(PolicyRecord, tenant_id, store.POLICY_KEY)
    if record is None:
        return Rules()
    templates = {**DEFAULT_TEMPLATES, **record.templates.as_dict()}
    return Rules(tuple(record.lead_times), templates["appointment"], templates["medication"])


def quiet_hours(contact: ContactRecord) -> QuietHours | None:
    if not contact.quiet_start or not contact.quiet_end:
        return None
    return QuietHours(parse_hhmm(contact.quiet_start), parse_hhmm(contact.quiet_end))


# --- appointments --------------------------------------------------------------------------------------
def plan_appointment(appointment: AppointmentRecord, contact: ContactRecord, rules: Rules, now: datetime) -> int:
    """Make sure the appointment's current revision has its reminders (one per lead time still ahead)."""
    return sum(store.insert_reminder(r) for r in appointment_reminders(appointment, contact, rules, now))


def appointment_reminders(
    appointment: AppointmentRecord, contact: ContactRecord, rules: Rules, now: datetime
) -> list[ReminderRecord]:
    """The reminders the appointment's current revision should have (computed, nothing written): callers plan
    before they store, so an appointment that cannot be planned is never stored."""
    if appointment.status != "scheduled":
        return []
    tz, quiet = zone(contact.timezone), quiet_hours(contact)
    appointment_id = appointment.sk.removeprefix("appt#")
    planned_reminders = []
    for text in rules.lead_times or DEFAULT_LEAD_TIMES:
        planned = LeadTime.parse(text).before(appointment.starts_at, tz)
        if planned <= now:
            continue  # this lead time has already passed (a late booking): nothing to remind of
        at = send_time(planned, tz, quiet, deadline=appointment.starts_at)
        reminder = ReminderRecord(
            appointment.tenant_id,
            store.appointment_reminder_key(appointment_id, int(appointment.revision), text),
            kind="appointment",
            source_id=appointment_id,
            revision=int(appointment.revision),
            contact_id=contact.sk.removeprefix("contact#"),
            template=rules.appointment_template,
            lead_time=text,
            planned_at=planned,
            remind_at=int(at.timestamp()),
            created_at=now,
            updated_at=now,
            attempts=[],
            note="moved out of quiet hours" if at != planned else None,
        )
        planned_reminders.append(reminder)
    return planned_reminders


def cancel_open(tenant_id: str, prefix: str, *, keep_revision: int | None, reason: str) -> int:
    """Cancel a source's pending/queued reminders, except those of `keep_revision`."""
    cancelled = 0
    for reminder in store.open_reminders(tenant_id, prefix):
        if keep_revision is not None and int(reminder.revision) == keep_revision:
            continue
        cancelled += store.close_reminder(reminder, store.CANCELLED, reason)
    return cancelled


# --- medication schedules ------------------------------------------------------------------------------
def dose_rule(med: MedicationRecord) -> DoseRule:
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


def check_plannable(med: MedicationRecord, now: datetime) -> None:
    """Compute the schedule's doses over a horizon, and the one after, writing nothing: raises what planning would."""
    tz, rule = zone(med.timezone), dose_rule(med)
    last = now
    for count, dose_at in enumerate(rule.doses(tz, now, now + MEDICATION_HORIZON)):
        if count >= MAX_DOSES_PER_ROLL:
            break
        last = dose_at
    rule.next_dose(tz, max(last, now + MEDICATION_HORIZON))


def roll_medication(med: MedicationRecord, template: str, now: datetime) -> int:
    """Plan the schedule's doses from its horizon to now + MEDICATION_HORIZON, then move the horizon (and its
    next roll in the due index) forward. Idempotent and safe to race: reminders are put only if absent, and the
    horizon moves only from the value this run started from."""
    tz, rule = zone(med.timezone), dose_rule(med)
    schedule_id = med.sk.removeprefix("med#")
    start = max(med.horizon_end, now - MEDICATION_STALE_AFTER)
    until = now + MEDICATION_HORIZON
    created = 0
    last = start
    for count, dose_at in enumerate(rule.doses(tz, start, until)):
        if count >= MAX_DOSES_PER_ROLL:
            break
        reminder = ReminderRecord(
            med.tenant_id,
            store.medication_reminder_key(schedule_id, int(med.revision), dose_at),
            kind="medication",
            source_id=schedule_id,
            revision=int(med.revision),
            contact_id=med.contact_id,
            template=template,
            dose_at=dose_at,
            planned_at=dose_at,
            remind_at=int(dose_at.timestamp()),
            created_at=now,
            updated_at=now,
            attempts=[],
        )
        created += store.insert_reminder(reminder)
        last = dose_at
    else:
        last = until
    upcoming = rule.next_dose(tz, last)
    model = store.table(MedicationRecord)
    actions = [model.horizon_end.set(last), model.updated_at.set(now)]
    if upcoming is None:  # the schedule has ended: it leaves the due index
        actions += [model.due_shard.remove(), model.due_at.remove()]
    else:
        # Roll again a day from now, or when the next dose comes within the horizon if that is later; never in
        # the same minute (a bounded roll that stopped at MAX_DOSES_PER_ROLL continues on the next sweep).
        next_roll = max(
            last - MEDICATION_HORIZON + MEDICATION_ROLL_EVERY, upcoming - MEDICATION_HORIZON, now + timedelta(minutes=1)
        )
        actions += [
            model.due_shard.set(store.due_shard(med.tenant_id, med.sk)),
            model.due_at.set(int(next_roll.timestamp())),
        ]
    store.update(med, actions, (model.revision == med.revision) & (model.horizon_end == med.horizon_end))
    return created


# --- the check before sending --------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    action: str  # send | cancel | expire | defer
    reason: str = ""
    until: datetime | None = None
    contact: ContactRecord | None = None
    template: str = ""
    context: dict[str, Any] | None = None


def check(reminder: ReminderRecord, now: datetime, *, quiet: bool = True) -> Verdict:
    """Is this reminder still worth sending now, and with what? Reads its source and its contact.
    With `quiet`, an appointment reminder that would arrive in the contact's quiet hours is deferred."""
    if reminder.kind == "appointment":
        return _check_appointment(reminder, now, quiet)
    return _check_medication(reminder, now)


def _check_appointment(reminder: ReminderRecord, now: datetime, quiet: bool) -> Verdict:
    appointment = store.get(
        AppointmentRecord, reminder.tenant_id, store.appointment_key(reminder.source_id), consistent=True
    )
    if appointment is None:
        return Verdict("cancel", "the appointment no longer exists")
    if appointment.status != "scheduled":
        return Verdict("cancel", f"the appointment is {appointment.status}")
    if int(appointment.revision) != int(reminder.revision):
        return Verdict("cancel", "the appointment was rescheduled")
    if now >= appointment.starts_at:
        return Verdict("expire", "the appointment had already started")
    contact = store.get(ContactRecord, reminder.tenant_id, store.contact_key(appointment.contact_id))
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


def _check_medication(reminder: ReminderRecord, now: datetime) -> Verdict:
    med = store.get(MedicationRecord, reminder.tenant_id, store.medication_key(reminder.source_id), consistent=True)
    if med is None:
        return Verdict("cancel", "the medication schedule was deleted")
    if int(med.revision) != int(reminder.revision):
        return Verdict("cancel", "the medication schedule changed")
    dose_at = reminder.dose_at or reminder.planned_at
    if now > dose_at + MEDICATION_STALE_AFTER:
        return Verdict("expire", f"more than {int(MEDICATION_STALE_AFTER.total_seconds() // 60)} minutes past the dose")
    contact = store.get(ContactRecord, reminder.tenant_id, store.contact_key(med.contact_id))
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
