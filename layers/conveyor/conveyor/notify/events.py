"""Notify's domain events: contacts created, updated or deleted; a notification delivered over a channel (an
ad-hoc notification's delivery log, or a reminder, got its delivery mark)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from conveyor.platform.events import Change, DomainEvent, EventType, event

TABLE = "RemindersTable"  # contacts and delivery logs live in the reminders table today
_CONTACT_FIELDS = ("name", "email", "phone", "timezone", "channels", "opted_out", "quiet_start", "quiet_end")


class ContactEventData(BaseModel):
    contact_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    channels: list[str] = Field(default_factory=list)
    opted_out: list[str] = Field(default_factory=list)


class NotificationEventData(BaseModel):
    contact_id: str
    channel: str = Field(description="email | sms | in_app")
    provider_message_id: str | None = None
    delivered_at: datetime | None = None
    reminder_id: str | None = Field(default=None, description="set when the notification was a reminder")
    job_id: str | None = Field(default=None, description="set for an ad-hoc notification (POST /v1/notifications)")


_CONTACT = {
    "contact_id": "c-42",
    "name": "Ann Example",
    "email": "ann@example.com",
    "timezone": "Europe/Amsterdam",
    "channels": ["email", "sms"],
    "opted_out": [],
}
CATALOGUE = (
    EventType("contact.created", "A contact was created.", ContactEventData, _CONTACT),
    EventType("contact.updated", "A contact's details or preferences changed.", ContactEventData, _CONTACT),
    EventType("contact.deleted", "A contact was deleted.", ContactEventData, {"contact_id": "c-42"}),
    EventType(
        "notification.delivered",
        "A notification was accepted by a channel's provider (or written to the in-app feed).",
        NotificationEventData,
        {
            "contact_id": "c-42",
            "channel": "email",
            "provider_message_id": "0100018c-ses",
            "delivered_at": "2026-12-01T10:00:00Z",
            "job_id": "job_01JDX3Q7ZV5J1M9S2K8T4W6Y0A",
        },
    ),
)


def map_change(change: Change) -> list[DomainEvent]:
    if change.table != TABLE:
        return []
    key = change.key()
    if key.startswith("contact#"):
        return _contact(change)
    if key.startswith(("dlv#", "rem#")):
        return _delivered(change)
    return []


def _contact(change: Change) -> list[DomainEvent]:
    image = change.new or change.old or {}
    if change.removed:
        kind = "deleted"
    elif change.created:
        kind = "created"
    elif any((change.new or {}).get(f) != (change.old or {}).get(f) for f in _CONTACT_FIELDS):
        kind = "updated"
    else:
        return []
    data = {"contact_id": image["sk"].removeprefix("contact#")}
    if kind != "deleted":
        data |= {f: image.get(f) for f in _CONTACT_FIELDS if image.get(f) is not None}
    payload = ContactEventData.model_validate(data).model_dump(mode="json")
    return [event(change, f"contact.{kind}", image["tenant_id"], payload)]


def _delivered(change: Change) -> list[DomainEvent]:
    new, old = change.new or {}, change.old or {}
    if not new.get("delivered_via") or old.get("delivered_via"):
        return []
    key = new["sk"]
    data = {
        "contact_id": new.get("contact_id"),
        "channel": new["delivered_via"],
        "provider_message_id": new.get("provider_message_id"),
        "delivered_at": new.get("delivered_at"),
        "reminder_id": key.removeprefix("rem#") if key.startswith("rem#") else None,
        "job_id": key.removeprefix("dlv#") if key.startswith("dlv#") else None,
    }
    payload = NotificationEventData.model_validate(data).model_dump(mode="json")
    return [event(change, "notification.delivered", new["tenant_id"], payload)]
