"""The reminders API's request and response shapes (pydantic; they also make the OpenAPI document)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conveyor.email.templates import template_names
from conveyor.reminders import store
from conveyor.reminders.planning import DEFAULT_LEAD_TIMES, DEFAULT_TEMPLATES
from conveyor.reminders.timing import LeadTime, plannable_day, plannable_instant, zone

Channel = Literal["email", "sms", "in_app"]
CHANNELS: tuple[str, ...] = get_args(Channel)
ReminderState = Literal["pending", "queued", "sent", "failed", "skipped", "expired", "cancelled"]
assert set(get_args(ReminderState)) == set(store.REMINDER_STATES)  # noqa: S101 - the two lists must not drift
AppointmentStatus = Literal["scheduled", "cancelled", "completed"]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"  # no '#': ids are parts of sort keys
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
LocalTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _unique(values: list[Any], what: str) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")
    return values


# --- contacts -----------------------------------------------------------------------------------------
class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: LocalTime = Field(examples=["21:00"], description="Local time (HH:MM) quiet hours begin.")
    end: LocalTime = Field(examples=["08:00"], description="Local time (HH:MM) they end; may be after midnight.")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254, json_schema_extra={"format": "email"})
    phone: str | None = Field(default=None, examples=["+447700900123"], description="E.164, e.g. +447700900123")
    timezone: str = Field(examples=["Europe/London"], description="IANA time zone name")
    channels: list[Channel] = Field(
        default_factory=lambda: list(CHANNELS),
        min_length=1,
        max_length=3,
        description="Channels in order of preference",
    )
    quiet_hours: QuietHours | None = None
    opted_out: list[Channel] = Field(default_factory=list, max_length=3)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # email-validator (what pydantic's EmailStr uses), imported on first use: it costs ~50 ms at cold start
        from email_validator import EmailNotValidError, validate_email

        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"not a valid email address: {exc}") from None

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError(
                "must be an E.164 phone number: '+', country code and number, digits only (e.g. +447700900123)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("channels", "opted_out")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        return _unique(value, "channels")


class Contact(ContactIn):
    id: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: store.ContactRecord) -> Contact:
        quiet = QuietHours(start=record.quiet_start, end=record.quiet_end) if record.quiet_start else None
        return cls.model_construct(
            id=record.sk.removeprefix("contact#"),
            name=record.name,
            email=record.email,
            phone=record.phone,
            timezone=record.timezone,
            channels=list(record.channels),
            quiet_hours=quiet,
            opted_out=list(record.opted_out or []),
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


# --- appointments -------------------------------------------------------------------------------------
class AppointmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    subject_name: str = Field(min_length=1, max_length=200, examples=["Rex"], description="Who it is for, e.g. the pet")
    starts_at: AwareDatetime = Field(description="With its UTC offset; stored in UTC")
    location: str | None = Field(default=None, max_length=300)
    status: AppointmentStatus = "scheduled"

    @field_validator("starts_at")
    @classmethod
    def _plannable(cls, value: datetime) -> datetime:
        return plannable_instant(value)


class Appointment(AppointmentIn):
    id: str
    starts_at_local: str = Field(description="starts_at in the contact's time zone")
    revision: int = Field(description="Grows each time the appointment's reminders are re-planned")
    created_at: datetime
    updated_at: datetime


# --- medication schedules -----------------------------------------------------------------------------
class MedicationScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    medication: str = Field(min_length=1, max_length=200)
    dose: str = Field(min_length=1, max_length=200, examples=["1 tablet"])
    times_of_day: list[LocalTime] | None = Field(
        default=None,
        min_length=1,
        max_length=24,
        examples=[["08:00"]],
        description="Local times each day (give this or every_hours)",
    )
    every_hours: int | None = Field(default=None, ge=1, le=168, description="Elapsed hours between doses")
    start_time: LocalTime = Field(default="08:00", description="With every_hours: the first dose's local time")
    start_date: date = Field(description="First day, in the contact's time zone")
    end_date: date | None = Field(default=None, description="Last day (inclusive); none = ongoing")

    @field_validator("times_of_day")
    @classmethod
    def _no_repeats(cls, value: list[str] | None) -> list[str] | None:
        return sorted(_unique(value, "times_of_day")) if value else value

    @field_validator("start_date", "end_date")
    @classmethod
    def _plannable(cls, value: date | None) -> date | None:
        return plannable_day(value) if value is not None else value

    @model_validator(mode="after")
    def _one_rule(self) -> MedicationScheduleIn:
        if (self.times_of_day is None) == (self.every_hours is None):
            raise ValueError("give times_of_day or every_hours (exactly one)")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class MedicationSchedule(MedicationScheduleIn):
    id: str
    timezone: str
    revision: int
    planned_until: datetime = Field(description="Dose reminders exist up to here; the scheduler rolls it forward")
    created_at: datetime
    updated_at: datetime


# --- policy -------------------------------------------------------------------------------------------
# What a reminder's template is rendered with (planning.check builds the real thing); a sample of each kind.
SAMPLE_CONTEXT: dict[str, dict[str, Any]] = {
    "appointment": {
        "name": "Ada",
        "subject_name": "Rex",
        "starts_at_local": "Wed 10 Jun 2099, 10:00 BST",
        "location": None,
    },
    "medication": {
        "name": "Ada",
        "medication": "Carprofen",
        "dose": "1 chew",
        "dose_time_local": "Wed 10 Jun 2099, 08:00 BST",
    },
}


class ReminderTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appointment: str = DEFAULT_TEMPLATES["appointment"]
    medication: str = DEFAULT_TEMPLATES["medication"]

    @field_validator("appointment", "medication")
    @classmethod
    def _renders(cls, value: str, info: ValidationInfo) -> str:
        """Known, and renders with what a reminder of this kind provides (checked now, not at send time)."""
        from conveyor.email.templates import render
        from conveyor.platform.errors import PermanentError

        if value not in template_names():
            raise ValueError(f"unknown template; available: {', '.join(sorted(template_names()))}")
        try:
            render(value, SAMPLE_CONTEXT[str(info.field_name)])
        except PermanentError as exc:
            raise ValueError(exc.message) from None
        return value


class ReminderPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appointment_lead_times: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LEAD_TIMES),
        min_length=1,
        max_length=5,
        examples=[list(DEFAULT_LEAD_TIMES)],
        description="ISO 8601 durations before an appointment. Hours/minutes are exact (PT24H = 24 h); days are "
        "calendar days in the contact's time zone (P1D = same local time the day before).",
    )
    templates: ReminderTemplates = Field(default_factory=ReminderTemplates)

    @field_validator("appointment_lead_times")
    @classmethod
    def _durations(cls, value: list[str]) -> list[str]:
        for text in _unique(value, "lead times"):
            LeadTime.parse(text)
        return value


# --- reminders ----------------------------------------------------------------------------------------
class DeliveryAttempt(BaseModel):
    channel: Channel
    status: Literal["sent", "failed", "skipped", "error"]
    provider_message_id: str | None = None
    detail: str | None = None
    at: datetime


class Reminder(BaseModel):
    id: str
    kind: Literal["appointment", "medication"]
    appointment_id: str | None = None
    medication_schedule_id: str | None = None
    contact_id: str
    revision: int
    lead_time: str | None = None
    dose_at: datetime | None = None
    planned_at: datetime = Field(description="When the rule puts it, before quiet hours")
    remind_at: datetime = Field(description="When it goes out")
    state: ReminderState
    note: str | None = None
    job_id: str | None = None
    delivered_via: Channel | None = None
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: store.ReminderRecord) -> Reminder:
        appointment = record.kind == "appointment"
        return cls(
            id=record.id,
            kind=record.kind,
            contact_id=record.contact_id,
            revision=int(record.revision),
            appointment_id=record.source_id if appointment else None,
            medication_schedule_id=None if appointment else record.source_id,
            lead_time=record.lead_time,
            dose_at=record.dose_at,
            planned_at=record.planned_at,
            remind_at=datetime.fromtimestamp(int(record.remind_at), tz=store.UTC),
            state=record.state,
            note=record.note,
            job_id=record.job_id,
            delivered_via=record.delivered_via,
            attempts=[DeliveryAttempt(**a.as_dict()) for a in record.attempts or []],
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class ReminderPage(BaseModel):
    items: list[Reminder]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


# --- notifications ------------------------------------------------------------------------------------
class NotificationRequest(BaseModel):
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
        if value is not None and value not in template_names():
            raise ValueError(f"unknown template; available: {', '.join(sorted(template_names()))}")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> NotificationRequest:
        if self.template is None and not (self.subject and self.text):
            raise ValueError("give a template, or a subject and a text")
        return self


class FeedItem(BaseModel):
    id: str
    title: str
    body: str
    source: dict[str, Any] | None = None
    created_at: datetime
    read_at: datetime | None = None

    @classmethod
    def of(cls, record: store.FeedItemRecord) -> FeedItem:
        return cls(
            id=record.id,
            title=record.title,
            body=record.body,
            source=record.source,
            created_at=record.created_at,
            read_at=record.read_at,
        )


class FeedPage(BaseModel):
    items: list[FeedItem]
    next_cursor: str | None = None
