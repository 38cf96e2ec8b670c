"""Reminders' domain: appointments, medication schedules, the reminders planned for them and their states.

    pending -> queued (a notification.send job exists for it) -> sent | failed | skipped
    pending | queued -> cancelled (source cancelled, rescheduled, deleted) | expired (too late to be useful)

Reminder keys are deterministic (source, revision, lead time or dose instant), so planning twice makes one.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from conveyor.notify import Attempt, Contact


class ReminderState(StrEnum):
    PENDING = "pending"  # waiting in the due index
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


REMINDER_STATES: tuple[str, ...] = tuple(ReminderState)
OPEN = (ReminderState.PENDING, ReminderState.QUEUED)

DEFAULT_LEAD_TIMES = ("PT24H", "PT2H")
DEFAULT_TEMPLATES = {"appointment": "appointment-reminder", "medication": "medication-reminder"}


@dataclass(frozen=True)
class Rules:
    """A tenant's reminder policy (absent = these defaults)."""

    lead_times: tuple[str, ...] = DEFAULT_LEAD_TIMES
    appointment_template: str = DEFAULT_TEMPLATES["appointment"]
    medication_template: str = DEFAULT_TEMPLATES["medication"]


@dataclass(frozen=True)
class Appointment:
    tenant_id: str
    id: str
    contact_id: str
    subject_name: str
    starts_at: datetime
    status: str  # scheduled | cancelled | completed
    revision: int  # grows when its reminders must be re-planned
    created_at: datetime
    updated_at: datetime
    location: str | None = None


@dataclass(frozen=True)
class Medication:
    tenant_id: str
    id: str
    contact_id: str
    medication: str
    dose: str
    start_date: str
    timezone: str  # the contact's zone the doses were planned in
    revision: int
    fingerprint: str
    horizon_end: datetime  # doses are planned up to here
    created_at: datetime
    updated_at: datetime
    times_of_day: tuple[str, ...] | None = None
    every_hours: int | None = None
    start_time: str | None = None
    end_date: str | None = None
    due_at: int | None = None  # the next horizon roll (epoch seconds), while the schedule goes on


@dataclass(frozen=True)
class Reminder:
    tenant_id: str
    key: str  # rem#appt#<appt>#<rev>#<lead> | rem#med#<med>#<rev>#<YYYYmmddTHHMMZ>
    kind: str  # appointment | medication
    source_id: str
    revision: int
    contact_id: str
    template: str
    planned_at: datetime  # by the rule, before quiet hours
    remind_at: int  # when it goes out (epoch seconds)
    created_at: datetime
    updated_at: datetime
    state: str = ReminderState.PENDING
    lead_time: str | None = None  # appointment reminders
    dose_at: datetime | None = None  # medication reminders
    note: str | None = None
    job_id: str | None = None
    due_at: int | None = None  # while pending: its place in the due index
    attempts: tuple[Attempt, ...] = field(default=())
    delivered_via: str | None = None

    @property
    def id(self) -> str:
        return self.key.removeprefix("rem#")


@dataclass(frozen=True)
class Verdict:
    """Is a reminder still worth sending now, and with what (`check`'s answer)."""

    action: str  # send | cancel | expire | defer
    reason: str = ""
    until: datetime | None = None
    contact: Contact | None = None
    template: str = ""
    context: dict[str, Any] | None = None
