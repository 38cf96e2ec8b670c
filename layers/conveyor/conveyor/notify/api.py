"""/v1 routes for contacts, their in-app feed and sending notifications, with their request/response shapes:
parse -> one service call -> shape the response. Scopes: reminders:read, reminders:write (contacts came with
the reminders API, and keep its scopes)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, cast, get_args

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from conveyor.jobs import JobResponse
from conveyor.notify import domain, service
from conveyor.notify.domain import ID_PATTERN
from conveyor.notify.jobs import NotificationContent
from conveyor.platform.clock import zone
from conveyor.platform.http.resolver import json_response
from conveyor.platform.http.security import principal, requires

Channel = Literal["email", "sms", "in_app"]
assert get_args(Channel) == domain.CHANNELS  # noqa: S101 - the two lists must not drift
LocalTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def no_repeats(values: list[Any], what: str) -> list[Any]:
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
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Ann Example",
                    "email": "ann@example.com",
                    "phone": "+447700900123",
                    "timezone": "Europe/London",
                    "channels": ["email", "sms", "in_app"],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254, json_schema_extra={"format": "email"})
    phone: str | None = Field(
        default=None,
        examples=["+447700900123"],
        description="E.164, e.g. +447700900123",
        json_schema_extra={"pattern": E164.pattern},
    )
    timezone: str = Field(examples=["Europe/London"], description="IANA time zone name")
    channels: list[Channel] = Field(
        default_factory=lambda: list(get_args(Channel)),
        min_length=1,
        max_length=3,
        description="Channels in order of preference",
        json_schema_extra={"uniqueItems": True},
    )
    quiet_hours: QuietHours | None = None
    opted_out: list[Channel] = Field(default_factory=list, max_length=3, json_schema_extra={"uniqueItems": True})

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
        return no_repeats(value, "channels")

    def as_fields(self) -> dict[str, Any]:
        """The contact's fields as notify's domain keeps them."""
        return {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "timezone": self.timezone,
            "channels": tuple(self.channels),
            "opted_out": tuple(self.opted_out),
            "quiet_start": self.quiet_hours.start if self.quiet_hours else None,
            "quiet_end": self.quiet_hours.end if self.quiet_hours else None,
        }


class Contact(ContactIn):
    id: str
    created_at: datetime
    updated_at: datetime
    source: str | None = Field(default=None, description="The CRM connection this contact is synced from")
    deleted_at: datetime | None = Field(default=None, description="When its source deleted it")

    @classmethod
    def of(cls, contact: domain.Contact) -> Contact:
        quiet = QuietHours(start=contact.quiet_start, end=contact.quiet_end) if contact.quiet_start else None
        # Not validated again: the contact was stored from a validated ContactIn, so its channels are Channels.
        return cls.model_construct(
            id=contact.id,
            name=contact.name,
            email=contact.email,
            phone=contact.phone,
            timezone=contact.timezone,
            channels=cast("list[Channel]", list(contact.channels)),
            quiet_hours=quiet,
            opted_out=cast("list[Channel]", list(contact.opted_out)),
            created_at=contact.created_at,
            updated_at=contact.updated_at,
            source=contact.source,
            deleted_at=contact.deleted_at,
        )


# --- notifications and the feed ----------------------------------------------------------------------
class NotificationRequest(NotificationContent):
    """Send now over the contact's preferred channels: a template with its context, or a subject and text."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"contact_id": "c_ann", "subject": "Your order shipped", "text": "Tuesday."}]},
    )


class FeedItem(BaseModel):
    id: str
    title: str
    body: str
    source: dict[str, Any] | None = None
    created_at: datetime
    read_at: datetime | None = None

    @classmethod
    def of(cls, item: domain.FeedItem) -> FeedItem:
        return cls(
            id=item.id,
            title=item.title,
            body=item.body,
            source=item.source,
            created_at=item.created_at,
            read_at=item.read_at,
        )


class FeedPage(BaseModel):
    items: list[FeedItem]
    next_cursor: str | None = None


router = Router()
READ, WRITE = requires("reminders:read"), requires("reminders:write")
ContactId = Annotated[str, Path(pattern=ID_PATTERN)]
NotificationId = Annotated[str, Path(pattern=r"^ntf_[0-9A-Z]{26}$")]


def _tenant() -> str:
    return principal(router).tenant_id


@router.put(
    "/contacts/<contact_id>",
    middlewares=[WRITE],
    summary="Create or replace a contact",
    responses={
        200: {"description": "Replaced", "content": {"application/json": {"model": Contact}}},
        201: {"description": "Created", "content": {"application/json": {"model": Contact}}},
    },
)
def put_contact(contact_id: ContactId, body: ContactIn) -> Response[Contact]:
    contact, created = service.put_contact(_tenant(), contact_id, body.as_fields())
    return json_response(Contact.of(contact), 201 if created else 200)


@router.get("/contacts/<contact_id>", middlewares=[READ], summary="Get a contact")
def get_contact(contact_id: ContactId) -> Contact:
    return Contact.of(service.get_contact(_tenant(), contact_id))


@router.get("/contacts/<contact_id>/notifications", middlewares=[READ], summary="A contact's in-app feed, newest first")
def list_feed(
    contact_id: ContactId,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> FeedPage:
    items, next_cursor = service.feed(_tenant(), contact_id, limit=limit, cursor=cursor)
    return FeedPage(items=[FeedItem.of(i) for i in items], next_cursor=next_cursor)


@router.post(
    "/contacts/<contact_id>/notifications/<notification_id>/read",
    middlewares=[WRITE],
    summary="Mark an in-app notification read",
)
def mark_read(contact_id: ContactId, notification_id: NotificationId) -> FeedItem:
    return FeedItem.of(service.mark_read(_tenant(), contact_id, notification_id))


@router.post(
    "/notifications",
    middlewares=[WRITE],
    summary="Send a notification now over the preferred channels",
    responses={
        202: {
            "description": "Accepted: a notification.send job",
            "content": {"application/json": {"model": JobResponse}},
        },
        200: {"description": "Replay of an earlier request with the same Idempotency-Key"},
    },
)
def send_notification(
    body: NotificationRequest,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", min_length=1, max_length=255)] = None,
) -> Response[JobResponse]:
    job, created = service.send(_tenant(), body.model_dump(mode="json", exclude_unset=True), idempotency_key)
    return json_response(JobResponse.of(job), 202 if created else 200)
