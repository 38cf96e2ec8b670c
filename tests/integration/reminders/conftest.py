"""Fixtures for reminders and notifications: a reminders-scoped API client, factories, the sweep, the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

SCOPES = "reminders:read,reminders:write,jobs:read"


@pytest.fixture
def rapi(api_as: Any) -> Any:
    """tenant-a, allowed to manage reminders (and read jobs)."""
    return api_as("tenant-a", SCOPES)


@pytest.fixture
def other_tenant(api_as: Any) -> Any:
    return api_as("tenant-b", SCOPES)


@pytest.fixture
def contact(rapi: Any):
    """contact(id="c1", **fields) -> the stored contact (asserts it was accepted)."""

    def make(contact_id: str = "c1", **fields: Any) -> dict[str, Any]:
        body = {
            "name": "Ada",
            "email": "ada@example.com",
            "phone": "+447700900123",
            "timezone": "Europe/London",
            "channels": ["email", "sms", "in_app"],
            **fields,
        }
        response = rapi.request("PUT", f"/v1/contacts/{contact_id}", body)
        assert response.status in (200, 201), response.json()
        return response.json()

    return make


@pytest.fixture
def appointment(rapi: Any):
    """appointment(id, starts_at, contact_id="c1", **fields) -> the stored appointment."""

    def make(appointment_id: str, starts_at: str, contact_id: str = "c1", **fields: Any) -> dict[str, Any]:
        body = {
            "contact_id": contact_id,
            "subject_name": "Rex",
            "starts_at": starts_at,
            "location": "Main St",
            **fields,
        }
        response = rapi.request("PUT", f"/v1/appointments/{appointment_id}", body)
        assert response.status in (200, 201), response.json()
        return response.json()

    return make


@pytest.fixture
def reminders_of(rapi: Any):
    def get(appointment_id: str) -> list[dict[str, Any]]:
        response = rapi.get(f"/v1/appointments/{appointment_id}/reminders")
        assert response.status == 200, response.json()
        return response.json()

    return get


@pytest.fixture
def sweep(stack: Any):
    """Run the scheduler's sweeps as of `now` (time travel), then deliver everything the sweep queued."""
    from conveyor import scheduler

    def run(now: datetime, *, deliver: bool = True) -> dict[str, int]:
        result = scheduler.run(now)
        if deliver:
            stack.drain()
        return result

    return run


@dataclass
class Outbox:
    """What the emulated providers accepted: emails (SES) and text messages (SNS)."""

    @property
    def emails(self) -> list[Any]:
        from moto.ses.models import ses_backends

        return list(ses_backends["123456789012"]["us-east-1"].sent_messages)

    @property
    def sms(self) -> list[tuple[str, str]]:
        from moto.sns.models import sns_backends

        return list(sns_backends["123456789012"]["us-east-1"].sms_messages.values())

    def to(self, address: str) -> list[Any]:
        return [m for m in self.emails if address in m.destinations.get("ToAddresses", [])]


@pytest.fixture
def outbox(stack: Any) -> Outbox:
    return Outbox()
