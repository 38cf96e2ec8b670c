"""/v1 routes for contacts, appointments, medication schedules, reminders, the policy and notifications:
parse -> one service call -> shape the response. Scopes: reminders:read, reminders:write."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import AwareDatetime, BaseModel

from conveyor.jobs import JobResponse
from conveyor.platform.http.security import principal, requires
from conveyor.reminders import service
from conveyor.reminders.models import (
    ID_PATTERN,
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
    ReminderState,
)

router = Router()
READ, WRITE = requires("reminders:read"), requires("reminders:write")
ContactId = Annotated[str, Path(pattern=ID_PATTERN)]
AppointmentId = Annotated[str, Path(pattern=ID_PATTERN)]
ScheduleId = Annotated[str, Path(pattern=ID_PATTERN)]
NotificationId = Annotated[str, Path(pattern=r"^ntf_[0-9A-Z]{26}$")]


def _json(body: BaseModel, status: int) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _upserted(body: BaseModel, created: bool) -> Response:
    return _json(body, 201 if created else 200)


def _tenant() -> str:
    return principal(router).tenant_id


# --- contacts -------------------------------------------------------------------------------------------
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
    return _upserted(*service.put_contact(_tenant(), contact_id, body))


@router.get("/contacts/<contact_id>", middlewares=[READ], summary="Get a contact")
def get_contact(contact_id: ContactId) -> Contact:
    return service.get_contact(_tenant(), contact_id)


@router.get("/contacts/<contact_id>/notifications", middlewares=[READ], summary="A contact's in-app feed, newest first")
def list_feed(
    contact_id: ContactId,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> FeedPage:
    return service.feed(_tenant(), contact_id, limit=limit, cursor=cursor)


@router.post(
    "/contacts/<contact_id>/notifications/<notification_id>/read",
    middlewares=[WRITE],
    summary="Mark an in-app notification read",
)
def mark_read(contact_id: ContactId, notification_id: NotificationId) -> FeedItem:
    return service.mark_read(_tenant(), contact_id, notification_id)


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
    return _upserted(*service.put_appointment(_tenant(), appointment_id, body))


@router.get("/appointments/<appointment_id>", middlewares=[READ], summary="Get an appointment")
def get_appointment(appointment_id: AppointmentId) -> Appointment:
    return service.get_appointment(_tenant(), appointment_id)


@router.get(
    "/appointments/<appointment_id>/reminders",
    middlewares=[READ],
    summary="An appointment's reminders, including cancelled ones of earlier times",
)
def appointment_reminders(appointment_id: AppointmentId) -> list[Reminder]:
    return service.appointment_reminders(_tenant(), appointment_id)


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
    return _upserted(*service.put_medication(_tenant(), schedule_id, body))


@router.get("/medication-schedules/<schedule_id>", middlewares=[READ], summary="Get a medication schedule")
def get_medication(schedule_id: ScheduleId) -> MedicationSchedule:
    return service.get_medication(_tenant(), schedule_id)


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
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ReminderPage:
    return service.list_reminders(_tenant(), state=state, start=from_, end=to, limit=limit, cursor=cursor)


@router.get("/reminder-policy", middlewares=[READ], summary="The tenant's reminder policy (defaults until set)")
def get_policy() -> ReminderPolicy:
    return service.get_policy(_tenant())


@router.put("/reminder-policy", middlewares=[WRITE], summary="Replace the reminder policy")
def put_policy(body: ReminderPolicy) -> ReminderPolicy:
    return service.put_policy(_tenant(), body)


# --- notifications --------------------------------------------------------------------------------------
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
    job, created = service.send_notification(_tenant(), body, idempotency_key)
    return _json(JobResponse.of(job), 202 if created else 200)
