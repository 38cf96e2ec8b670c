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
  SAMPLE_WEBHOOK  a subscription to job.completed at the local gateway's webhook inbox: events-job-completed (the
                  sample job's completion on the jobs table's stream) becomes one delivery to it

Records are made through the product's own code: keys through the key module, the appointment and its contact
through the HTTP API (the sample key, the emulated gateway), the jobs through the jobs repository, since no API
puts a job in `retrying` or `failed`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("conveyor_local")
TENANT = "demo"
SAMPLE_KEY = "cvk_sampleeventsforsamlocalinvokeonlynotasecret000000000"
SAMPLE_SCOPES = frozenset({"jobs:read", "jobs:write", "reminders:read", "reminders:write", "webhooks:read"})
SAMPLE_JOB_ID = "job_01JD0000000000000000000000"
FAILED_JOB_ID = "job_01JD0000000000000000000001"
SAMPLE_CONTACT = "sample-contact"
SAMPLE_APPOINTMENT = "sample-appointment"
SAMPLE_WEBHOOK = "sample events: events-job-completed"  # the subscription's description, how seeding finds it
SAMPLE_EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}}
REMINDER_LEAD = timedelta(hours=2)  # the default policy's shortest lead time (PT2H)
# Planning skips a lead time already past when the appointment is stored, so the reminder is made due shortly after
# the request; a slow machine gets a wider margin on the second try.
_DUE_IN = (timedelta(seconds=1), timedelta(seconds=10))


class SeedFailed(RuntimeError):
    """The API refused a sample record: the samples and the API disagree (a bug in one of them)."""


def seed(stack: Any, *, api_url: str = "http://127.0.0.1:3000", wait_until_due: bool = True) -> dict[str, Any]:
    """Create (or put back) every sample record in the stack's world; returns what was made. `api_url`: the local
    gateway whose webhook inbox the sample subscription posts to. With wait_until_due, returns once the sample
    reminder is due (a second or so), so a scheduler run right after finds it."""
    from conveyor import capabilities

    capabilities.install()  # as each function's handler does: job types and the event catalogue, composed
    _key()
    _jobs()
    webhook = _webhook(api_url)
    due_at = _due_reminder(stack)
    if wait_until_due:
        time.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
    return {
        "api_key": SAMPLE_KEY,
        "tenant": TENANT,
        "jobs": [SAMPLE_JOB_ID, FAILED_JOB_ID],
        "appointment": SAMPLE_APPOINTMENT,
        "webhook": webhook,
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
    from conveyor.jobs.domain import Job, JobError, JobState, TimelineEvent
    from conveyor.platform.settings import get_settings

    now = datetime.now(UTC)
    first = now - timedelta(minutes=1)
    common: dict[str, Any] = {
        "tenant_id": TENANT,
        "type": "email.send",
        "queue": "email",
        "max_attempts": 3,
        "attempts": 1,
    }
    _put_job(
        Job(
            id=SAMPLE_JOB_ID,
            state=JobState.RETRYING,
            payload=dict(SAMPLE_EMAIL),
            error=JobError("TransientError", "sesv2 TooManyRequestsException: Maximum sending rate exceeded"),
            created_at=first,
            updated_at=first,
            started_at=first,
            timeline=(
                TimelineEvent(JobState.QUEUED, first),
                TimelineEvent(JobState.ACTIVE, first),
                TimelineEvent(JobState.RETRYING, first, "retry in 4s after TransientError"),
            ),
            **common,
        )
    )
    _put_job(
        Job(
            id=FAILED_JOB_ID,
            state=JobState.FAILED,
            payload={"to": ["grace@example.com"], "template": "appointment-reminder", "context": {"name": "Grace"}},
            error=JobError(
                "PermanentError", "template 'appointment-reminder' needs a context value: 'subject_name' is undefined"
            ),
            created_at=first,
            updated_at=first,
            started_at=first,
            finished_at=first,
            expires_at=int((now + timedelta(days=get_settings().failed_retention_days)).timestamp()),
            timeline=(
                TimelineEvent(JobState.QUEUED, first),
                TimelineEvent(JobState.ACTIVE, first),
                TimelineEvent(JobState.FAILED, first, "PermanentError: template needs a context value"),
            ),
            **common,
        )
    )


def _put_job(job: Any) -> None:
    """Through the jobs repository's public transitions: a finished copy (the worker sample ran) is deleted and
    written again; one still on its way (queued or active after the dispatcher sample) is left to finish."""
    from conveyor.jobs import repository

    existing = repository.get(job.tenant_id, job.id, consistent=True, include_expired=True)
    if existing is not None and existing.state == job.state and existing.attempts == job.attempts:
        return
    if existing is not None and not (existing.finished and repository.delete_finished(existing)):
        log.warning("sample job %s is %s (running); not reset", job.id, existing.state)
        return
    repository.insert(job)


def _webhook(api_url: str) -> str:
    """The sample subscription, made once per world (its signing secret is not needed: the inbox keeps what came)."""
    from conveyor.webhooks import service
    from conveyor_local.inbox import PATH

    for subscription in service.list_all(TENANT):
        if subscription.description == SAMPLE_WEBHOOK:
            return subscription.id
    subscription, _secret = service.create(
        TENANT, url=api_url + PATH, event_types=["job.completed"], description=SAMPLE_WEBHOOK
    )
    return subscription.id


def _due_reminder(stack: Any) -> datetime:
    """A contact and an appointment through the API; re-seeding moves the appointment, which re-plans its reminder."""
    _api(
        stack,
        "PUT",
        f"/v1/contacts/{SAMPLE_CONTACT}",
        {"name": "Ann", "email": "ann@example.com", "timezone": "UTC", "channels": ["email"], "opted_out": []},
    )
    for margin in _DUE_IN:
        due_at = datetime.now(UTC) + margin
        body = {
            "contact_id": SAMPLE_CONTACT,
            "subject_name": "Rex",
            "starts_at": (due_at + REMINDER_LEAD).isoformat(),
            "location": "Main St",
        }
        _api(stack, "PUT", f"/v1/appointments/{SAMPLE_APPOINTMENT}", body)
        if datetime.now(UTC) < due_at:  # the API planned it before it came due
            return due_at
    raise SeedFailed("the machine is too slow to plan a reminder 10 s ahead")


def _api(stack: Any, method: str, path: str, body: dict[str, Any]) -> Any:
    headers = {"authorization": f"Bearer {SAMPLE_KEY}", "content-type": "application/json"}
    response = stack.gateway.handle(method, path, headers, json.dumps(body).encode())
    if response.status >= 300:
        raise SeedFailed(f"{method} {path} answered {response.status}: {response.body[:300]!r}")
    return response.json()
