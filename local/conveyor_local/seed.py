"""The records the sample events in events/ act on, so that each sample shows its function doing its work.

`make run` creates them at start; `conveyor-local invoke --seed` puts them back (the worker sample completes its
job, a running stack's scheduler sends the due reminder within its first minute). Seeding is idempotent: it
overwrites the sample records and touches nothing else. All of them belong to the `demo` tenant.

  SAMPLE_KEY      the API key in the samples' Authorization header (authorizer-request: authenticated as demo)
  SAMPLE_JOB_ID   an email job in `retrying` after a throttled first attempt: api-get-job reads it, worker-email-batch
                  runs it (no running stack touches a retrying job: the dispatcher forwards only `queued` ones and
                  its SQS message is the sample's record), dispatcher-queued-insert names it
  FAILED_JOB_ID   a failed email job (its template needed a value): api-list-jobs (state=failed) lists it
  SAMPLE_APPOINTMENT  an appointment 2 h away whose 2-hour reminder is due at once: scheduler-minute queues it

Records are made through the product's own code: keys through the key module, the appointment and its contact
through the HTTP API (the sample key, the emulated gateway), the jobs through the jobs store's model, since no
API puts a job in `retrying` or `failed`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

TENANT = "demo"
SAMPLE_KEY = "cvk_sampleeventsforsamlocalinvokeonlynotasecret000000000"
SAMPLE_SCOPES = frozenset({"jobs:read", "jobs:write", "reminders:read", "reminders:write"})
SAMPLE_JOB_ID = "job_01JD0000000000000000000000"
FAILED_JOB_ID = "job_01JD0000000000000000000001"
SAMPLE_CONTACT = "sample-contact"
SAMPLE_APPOINTMENT = "sample-appointment"
SAMPLE_EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}}
REMINDER_LEAD = timedelta(hours=2)  # the default policy's shortest lead time (PT2H)
_DUE_IN = timedelta(milliseconds=300)  # planning skips lead times already past, so the reminder is due just after


class SeedFailed(RuntimeError):
    """The API refused a sample record: the samples and the API disagree (a bug in one of them)."""


def seed(stack: Any) -> dict[str, Any]:
    """Create (or put back) every sample record in the stack's world; returns what was made. Waits (< 1 s) until
    the sample reminder is due, so a scheduler run right after finds it."""
    _key()
    _jobs()
    due_at = _due_reminder(stack)
    time.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
    return {
        "api_key": SAMPLE_KEY,
        "tenant": TENANT,
        "jobs": [SAMPLE_JOB_ID, FAILED_JOB_ID],
        "appointment": SAMPLE_APPOINTMENT,
        "reminder_due_at": due_at.isoformat(),
    }


def _key() -> None:
    from conveyor.platform.auth import keys

    found = keys.authenticate(SAMPLE_KEY)
    if found is not None and found.tenant_id == TENANT and found.scopes == SAMPLE_SCOPES:
        return
    if found is not None or keys.key_id_of(SAMPLE_KEY) is None:
        raise SeedFailed("the sample key exists with another tenant or scopes")
    keys.create(TENANT, set(SAMPLE_SCOPES), name="sample events (events/*.json)", key=SAMPLE_KEY)


def _jobs() -> None:
    from conveyor.jobs.store import RETRYING, JobRecord, TimelineEntry
    from conveyor.platform.dynamo import bind
    from conveyor.platform.settings import get_settings

    settings = get_settings()
    model = bind(JobRecord, settings.jobs_table)
    now = datetime.now(UTC)
    first = now - timedelta(minutes=1)
    model(
        TENANT,
        SAMPLE_JOB_ID,
        type="email.send",
        queue="email",
        state=RETRYING,
        payload=dict(SAMPLE_EMAIL),
        attempts=1,
        max_attempts=3,
        defers=0,
        progress=0,
        error={"type": "TransientError", "message": "sesv2 TooManyRequestsException: Maximum sending rate exceeded"},
        created_at=first,
        updated_at=first,
        started_at=first,
        timeline=[
            TimelineEntry(state="queued", at=first),
            TimelineEntry(state="active", at=first),
            TimelineEntry(state=RETRYING, at=first, note="retry in 4s after TransientError"),
        ],
    ).save()
    model(
        TENANT,
        FAILED_JOB_ID,
        type="email.send",
        queue="email",
        state="failed",
        payload={"to": ["grace@example.com"], "template": "appointment-reminder", "context": {"name": "Grace"}},
        attempts=1,
        max_attempts=3,
        defers=0,
        progress=0,
        error={
            "type": "PermanentError",
            "message": "template 'appointment-reminder' needs a context value: 'subject_name' is undefined",
        },
        created_at=first,
        updated_at=first,
        started_at=first,
        finished_at=first,
        expires_at=int((now + timedelta(days=settings.failed_retention_days)).timestamp()),
        timeline=[
            TimelineEntry(state="queued", at=first),
            TimelineEntry(state="active", at=first),
            TimelineEntry(state="failed", at=first, note="PermanentError: template needs a context value"),
        ],
    ).save()


def _due_reminder(stack: Any) -> datetime:
    """A contact and an appointment through the API; re-seeding moves the appointment, which re-plans its reminder."""
    _api(
        stack,
        "PUT",
        f"/v1/contacts/{SAMPLE_CONTACT}",
        {"name": "Ann", "email": "ann@example.com", "timezone": "UTC", "channels": ["email"], "opted_out": []},
    )
    due_at = datetime.now(UTC) + _DUE_IN
    _api(
        stack,
        "PUT",
        f"/v1/appointments/{SAMPLE_APPOINTMENT}",
        {
            "contact_id": SAMPLE_CONTACT,
            "subject_name": "Rex",
            "starts_at": (due_at + REMINDER_LEAD).isoformat(),
            "location": "Main St",
        },
    )
    return due_at


def _api(stack: Any, method: str, path: str, body: dict[str, Any]) -> Any:
    headers = {"authorization": f"Bearer {SAMPLE_KEY}", "content-type": "application/json"}
    response = stack.gateway.handle(method, path, headers, json.dumps(body).encode())
    if response.status >= 300:
        raise SeedFailed(f"{method} {path} answered {response.status}: {response.body[:300]!r}")
    return response.json()
