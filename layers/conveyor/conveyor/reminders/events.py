"""Reminders' domain events, from the reminders table's stream: a reminder was sent or failed; an appointment
was created, updated or cancelled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.platform.events import Change, DomainEvent, EventType, event

TABLE = "RemindersTable"
_APPOINTMENT_FIELDS = ("contact_id", "subject_name", "starts_at", "location", "status")


class ReminderEventData(BaseModel):
    reminder_id: str
    kind: str = Field(description="appointment | medication")
    source_id: str = Field(description="the appointment's or medication schedule's id")
    contact_id: str
    state: str
    delivered_via: str | None = Field(default=None, description="reminder.sent: the channel that delivered it")
    note: str | None = Field(default=None, description="reminder.failed: why")


class AppointmentEventData(BaseModel):
    appointment_id: str
    contact_id: str
    subject_name: str
    starts_at: datetime
    location: str | None = None
    status: str = Field(description="scheduled | cancelled | completed")


_REMINDER = {
    "reminder_id": "appt#a-100#000001#P1D",
    "kind": "appointment",
    "source_id": "a-100",
    "contact_id": "c-42",
    "state": "sent",
    "delivered_via": "email",
}
_APPOINTMENT = {
    "appointment_id": "a-100",
    "contact_id": "c-42",
    "subject_name": "Rex",
    "starts_at": "2026-12-02T09:30:00Z",
    "location": "Main street clinic",
    "status": "scheduled",
}
CATALOGUE = (
    EventType("reminder.sent", "A reminder reached its contact.", ReminderEventData, _REMINDER),
    EventType(
        "reminder.failed",
        "A reminder could not be delivered over any channel.",
        ReminderEventData,
        {**_REMINDER, "state": "failed", "delivered_via": None, "note": "no channel could deliver"},
    ),
    EventType("appointment.created", "An appointment was created.", AppointmentEventData, _APPOINTMENT),
    EventType(
        "appointment.updated", "An appointment changed (time, place, status).", AppointmentEventData, _APPOINTMENT
    ),
    EventType(
        "appointment.cancelled",
        "An appointment was cancelled (its pending reminders are cancelled too).",
        AppointmentEventData,
        {**_APPOINTMENT, "status": "cancelled"},
    ),
)


def map_change(change: Change) -> list[DomainEvent]:
    if change.table != TABLE or change.new is None:
        return []
    key = change.key()
    if key.startswith("rem#"):
        return _reminder(change)
    if key.startswith("appt#"):
        return _appointment(change)
    return []


def _reminder(change: Change) -> list[DomainEvent]:
    new = change.new or {}
    for state in ("sent", "failed"):
        if change.moved("state", state):
            data = {
                "reminder_id": new["sk"].removeprefix("rem#"),
                "kind": new.get("kind"),
                "source_id": new.get("source_id"),
                "contact_id": new.get("contact_id"),
                "state": state,
                "delivered_via": new.get("delivered_via"),
                "note": new.get("note"),
            }
            payload = ReminderEventData.model_validate(data).model_dump(mode="json")
            return [event(change, f"reminder.{state}", new["tenant_id"], payload)]
    return []


def _appointment(change: Change) -> list[DomainEvent]:
    new, old = change.new or {}, change.old or {}
    if change.created:
        kind = "created"
    elif change.moved("status", "cancelled"):
        kind = "cancelled"
    elif any(new.get(f) != old.get(f) for f in _APPOINTMENT_FIELDS):
        kind = "updated"
    else:
        return []
    data: dict[str, Any] = {
        "appointment_id": new["sk"].removeprefix("appt#"),
        **{f: new.get(f) for f in _APPOINTMENT_FIELDS},
    }
    payload = AppointmentEventData.model_validate(data).model_dump(mode="json")
    return [event(change, f"appointment.{kind}", new["tenant_id"], payload)]
