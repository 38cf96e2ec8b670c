"""/v1 routes for appointments, medication schedules, reminders and the reminder policy, with their request and
response shapes (pydantic; they also make the OpenAPI document): parse -> one service call -> shape the
response. Scopes: reminders:read, reminders:write. (Contacts, the feed and notifications: conveyor.notify.api.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conveyor import email, notify
from conveyor.notify.api import Channel, LocalTime, no_repeats
from conveyor.platform.clock import Instant, iso_8601, zone
from conveyor.platform.dynamo import NEXT_CURSOR_DOC
from conveyor.platform.http.resolver import json_response
from conveyor.platform.http.security import principal, requires
from conveyor.reminders import domain, service
from conveyor.reminders.domain import DEFAULT_LEAD_TIMES, DEFAULT_TEMPLATES
from conveyor.reminders.timing import LeadTime, plannable_day, plannable_instant

ReminderState = Literal["pending", "queued", "sent", "failed", "skipped", "expired", "cancelled"]
assert set(get_args(ReminderState)) == set(domain.REMINDER_STATES)  # noqa: S101 - the two lists must not drift
AppointmentStatus = Literal["scheduled", "cancelled", "completed"]
Id = Annotated[str, StringConstraints(pattern=notify.ID_PATTERN)]


# --- appointments -------------------------------------------------------------------------------------
class AppointmentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "contact_id": "c_ann",
                    "subject_name": "Rex",
                    "starts_at": "2030-03-01T09:30:00+00:00",
                    "location": "Riverside Vets",
                }
            ]
        },
    )

    contact_id: Id
    subject_name: str = Field(min_length=1, max_length=200, examples=["Rex"], description="Who it is for, e.g. the pet")
    starts_at: Annotated[AwareDatetime, BeforeValidator(iso_8601)] = Field(
        description="With its UTC offset; stored in UTC"
    )
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

    @classmethod
    def of(cls, appointment: domain.Appointment, contact: notify.Contact | None) -> Appointment:
        tz = zone(contact.timezone) if contact else UTC
        return cls(
            id=appointment.id,
            contact_id=appointment.contact_id,
            subject_name=appointment.subject_name,
            starts_at=appointment.starts_at,
            starts_at_local=appointment.starts_at.astimezone(tz).isoformat(),
            location=appointment.location,
            status=appointment.status,  # stored from an AppointmentStatus
            revision=appointment.revision,
            created_at=appointment.created_at,
            updated_at=appointment.updated_at,
        )


# --- medication schedules -----------------------------------------------------------------------------
class MedicationScheduleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "contact_id": "c_ann",
                    "medication": "Amoxicillin",
                    "dose": "1 tablet",
                    "times_of_day": ["08:00", "20:00"],
                    "start_date": "2030-03-01",
                    "end_date": "2030-03-07",
                }
            ]
        },
    )

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
    every_hours: StrictInt | None = Field(default=None, ge=1, le=168, description="Elapsed hours between doses")
    start_time: LocalTime = Field(default="08:00", description="With every_hours: the first dose's local time")
    start_date: date = Field(description="First day, in the contact's time zone")
    end_date: date | None = Field(default=None, description="Last day (inclusive); none = ongoing")

    @field_validator("times_of_day")
    @classmethod
    def _no_repeats(cls, value: list[str] | None) -> list[str] | None:
        return sorted(no_repeats(value, "times_of_day")) if value else value

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

    @classmethod
    def of(cls, med: domain.Medication) -> MedicationSchedule:
        return cls(
            id=med.id,
            contact_id=med.contact_id,
            medication=med.medication,
            dose=med.dose,
            times_of_day=list(med.times_of_day) if med.times_of_day else None,
            every_hours=med.every_hours,
            start_time=med.start_time or "08:00",
            start_date=date.fromisoformat(med.start_date),
            end_date=date.fromisoformat(med.end_date) if med.end_date else None,
            timezone=med.timezone,
            revision=med.revision,
            planned_until=med.horizon_end,
            created_at=med.created_at,
            updated_at=med.updated_at,
        )


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
        from conveyor.platform.errors import PermanentError

        if value not in email.template_names():
            raise ValueError(f"unknown template; available: {', '.join(sorted(email.template_names()))}")
        try:
            email.render(value, SAMPLE_CONTEXT[str(info.field_name)])
        except PermanentError as exc:
            raise ValueError(exc.message) from None
        return value


class ReminderPolicy(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"appointment_lead_times": ["P1D", "PT2H"]}]}
    )

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
        for text in no_repeats(value, "lead times"):
            LeadTime.parse(text)
        return value

    @classmethod
    def of(cls, rules: domain.Rules) -> ReminderPolicy:
        return cls(
            appointment_lead_times=list(rules.lead_times),
            templates=ReminderTemplates(appointment=rules.appointment_template, medication=rules.medication_template),
        )

    def as_rules(self) -> domain.Rules:
        return domain.Rules(tuple(self.appointment_lead_times), self.templates.appointment, self.templates.medication)


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
    def of(cls, reminder: domain.Reminder) -> Reminder:
        appointment = reminder.kind == "appointment"
        return cls(
            id=reminder.id,
            kind=reminder.kind,  # appointment | medication
            contact_id=reminder.contact_id,
            revision=reminder.revision,
            appointment_id=reminder.source_id if appointment else None,
            medication_schedule_id=None if appointment else reminder.source_id,
            lead_time=reminder.lead_time,
            dose_at=reminder.dose_at,
            planned_at=reminder.planned_at,
            remind_at=datetime.fromtimestamp(reminder.remind_at, tz=UTC),
            state=reminder.state,  # one of ReminderState (asserted above)
            note=reminder.note,
            job_id=reminder.job_id,
            delivered_via=reminder.delivered_via,  # one of Channel
            attempts=[DeliveryAttempt(**a.as_dict()) for a in reminder.attempts],
            created_at=reminder.created_at,
            updated_at=reminder.updated_at,
        )


class ReminderPage(BaseModel):
    items: list[Reminder]
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR_DOC)


router = Router()
READ, WRITE = requires("reminders:read"), requires("reminders:write")
AppointmentId = Annotated[str, Path(pattern=notify.ID_PATTERN)]
ScheduleId = Annotated[str, Path(pattern=notify.ID_PATTERN)]


def _upserted(body: BaseModel, created: bool) -> Response:
    return json_response(body, 201 if created else 200)


def _tenant() -> str:
    return principal(router).tenant_id


# --- appointments ---------------------------------------------------------------------------------------
@router.put(
    "/appointments/<appointment_id>",
    middlewares=[WRITE],
    summary="Create or replace an appointment (a new starts_at reschedules its reminders; "
    "status=cancelled cancels them)",
    responses={
        200: {"description": "Replaced", "content": {"application/json": {"model": Appointment}}},
        201: {"description": "Created", "content": {"application/json": {"model": Appointment}}},
    },
)
def put_appointment(appointment_id: AppointmentId, body: AppointmentIn) -> Response[Appointment]:
    appointment, contact, created = service.put_appointment(_tenant(), appointment_id, **body.model_dump())
    return _upserted(Appointment.of(appointment, contact), created)


@router.get("/appointments/<appointment_id>", middlewares=[READ], summary="Get an appointment")
def get_appointment(appointment_id: AppointmentId) -> Appointment:
    return Appointment.of(*service.get_appointment(_tenant(), appointment_id))


@router.get(
    "/appointments/<appointment_id>/reminders",
    middlewares=[READ],
    summary="An appointment's reminders, including cancelled ones of earlier times",
)
def appointment_reminders(appointment_id: AppointmentId) -> list[Reminder]:
    return [Reminder.of(r) for r in service.appointment_reminders(_tenant(), appointment_id)]


# --- medication schedules -------------------------------------------------------------------------------
@router.put(
    "/medication-schedules/<schedule_id>",
    middlewares=[WRITE],
    summary="Create or replace a medication schedule",
    responses={
        200: {"description": "Replaced", "content": {"application/json": {"model": MedicationSchedule}}},
        201: {"description": "Created", "content": {"application/json": {"model": MedicationSchedule}}},
    },
)
def put_medication(schedule_id: ScheduleId, body: MedicationScheduleIn) -> Response[MedicationSchedule]:
    med, created = service.put_medication(_tenant(), schedule_id, **dict(body))
    return _upserted(MedicationSchedule.of(med), created)


@router.get("/medication-schedules/<schedule_id>", middlewares=[READ], summary="Get a medication schedule")
def get_medication(schedule_id: ScheduleId) -> MedicationSchedule:
    return MedicationSchedule.of(service.get_medication(_tenant(), schedule_id))


@router.delete(
    "/medication-schedules/<schedule_id>",
    middlewares=[WRITE],
    summary="Delete a medication schedule and cancel its pending reminders",
    responses={204: {"description": "Deleted"}},
)
def delete_medication(schedule_id: ScheduleId) -> Response[None]:
    service.delete_medication(_tenant(), schedule_id)
    return Response(status_code=204)


# --- reminders and policy -------------------------------------------------------------------------------
@router.get("/reminders", middlewares=[READ], summary="Reminders by send time")
def list_reminders(
    state: Annotated[ReminderState | None, Query()] = None,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ReminderPage:
    items, next_cursor = service.list_reminders(_tenant(), state=state, start=from_, end=to, limit=limit, cursor=cursor)
    return ReminderPage(items=[Reminder.of(r) for r in items], next_cursor=next_cursor)


@router.get("/reminder-policy", middlewares=[READ], summary="The tenant's reminder policy (defaults until set)")
def get_policy() -> ReminderPolicy:
    return ReminderPolicy.of(service.get_policy(_tenant()))


@router.put("/reminder-policy", middlewares=[WRITE], summary="Replace the reminder policy")
def put_policy(body: ReminderPolicy) -> ReminderPolicy:
    return ReminderPolicy.of(service.put_policy(_tenant(), body.as_rules()))
