"""Every sample in events/ is a valid input for its function, and does what it says: `sam local invoke -e
events/<file>` never rots. Each sample has its expected outcome below (a new sample needs one).

A file is named <function>-<case>.json, where <function> is the function's folder under functions/. The world
is seeded with what the samples name (the job `job_01JD0000000000000000000000` of tenant `demo`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor_local.lambdas import LambdaContext, load_handler

EVENTS = sorted((Path(__file__).resolve().parents[2] / "events").glob("*.json"))
SAMPLE_JOB = "job_01JD0000000000000000000000"
EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}}


def _function_for(stack, event_file: Path):
    by_folder = {spec.code_dir.name: spec for spec in stack.functions.values()}
    folder = next((f for f in by_folder if event_file.name.startswith(f + "-")), None)
    assert folder, f"{event_file.name} names no function folder ({sorted(by_folder)})"
    return by_folder[folder]


def _seed(state: str) -> None:
    """The sample job, as the API would have stored it (or, for "key", the sample key; for "subscribed", a webhook
    subscription to the job)."""
    if state == "key":
        from conveyor.platform.auth import keys
        from conveyor_local.seed import SAMPLE_KEY, SAMPLE_SCOPES

        keys.create("demo", set(SAMPLE_SCOPES), key=SAMPLE_KEY)
        return
    if state == "subscribed":
        from conveyor.webhooks import service

        service.create("demo", url="https://1.1.1.1/hook", event_types=["job.*"])
        return
    from conveyor.jobs import repository
    from conveyor.jobs.domain import Job, JobError, TimelineEvent

    now = datetime.now(UTC)
    error = JobError("PermanentError", "SES MessageRejected") if state == "failed" else None
    repository.insert(
        Job(
            tenant_id="demo",
            id=SAMPLE_JOB,
            type="email.send",
            queue="email",
            state=state,
            payload=EMAIL,
            max_attempts=3,
            created_at=now,
            updated_at=now,
            error=error,
            timeline=(TimelineEvent(state, now),),
        )
    )


def _job() -> Any:
    from conveyor.jobs import repository

    return repository.get("demo", SAMPLE_JOB, consistent=True)


def _body(result: dict[str, Any]) -> Any:
    return json.loads(result["body"])


def _enqueued(stack, result):
    assert result["statusCode"] == 202, result
    job = _body(result)
    assert (job["type"], job["state"], job["queue"]) == ("email.send", "queued", "email")


def _invalid(stack, result):
    assert result["statusCode"] == 422, result
    error = _body(result)["error"]
    assert error["code"] == "validation_error"
    assert any(d["loc"][:3] == ["body", "payload", "to"] for d in error["details"]), error


def _got_job(stack, result):
    assert result["statusCode"] == 200, result
    assert (_body(result)["id"], _body(result)["state"]) == (SAMPLE_JOB, "queued")


def _healthy(stack, result):
    assert (result["statusCode"], _body(result)) == (200, {"status": "ok"})


def _listed_failed(stack, result):
    assert result["statusCode"] == 200, result
    assert [(j["id"], j["state"]) for j in _body(result)["items"]] == [(SAMPLE_JOB, "failed")]


def _authenticated(stack, result):
    assert result["isAuthorized"] is True
    assert (result["context"]["authenticated"], result["context"]["tenant_id"]) == (True, "demo")


def _unknown_key(stack, result):
    assert result["isAuthorized"] is True and result["context"]["authenticated"] is False  # the API answers 401


def _dispatched(stack, result):
    assert result == {"batchItemFailures": []}
    url = json.loads(stack.functions["WorkerFunction"].environment["QUEUES"])["email"]
    [message] = stack.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert json.loads(message["Body"])["job_id"] == SAMPLE_JOB


def _swept(stack, result):
    from conveyor import capabilities

    assert set(result) == {sweep.__name__ for sweep in capabilities.sweeps()}
    assert all(isinstance(n, int) for n in result.values()), result


def _worked(stack, result):
    # The email job is done and its message acknowledged; the unreadable record is dropped, not retried.
    assert result == {"batchItemFailures": []}
    job = _job()
    assert job.state == "completed" and job.result["message_id"], job


def _announced(stack, result):
    # The completed job became one job.completed delivery for the tenant's subscription, and its job.
    from conveyor.webhooks import repository, service

    assert result == {"batchItemFailures": []}
    [subscription] = service.list_all("demo")
    [delivery], _ = repository.list_deliveries("demo", subscription.id)
    assert (delivery.event_type, delivery.status) == ("job.completed", "pending")
    assert delivery.event["data"]["result"] == {"message_id": "0100018c-ses"}


# file -> (seed the world with the sample job in this state, or None; the outcome the sample must have)
EXPECTED: dict[str, tuple[str | None, Callable[[Any, Any], None]]] = {
    "api-enqueue-email.json": (None, _enqueued),
    "api-enqueue-invalid.json": (None, _invalid),
    "api-get-job.json": ("queued", _got_job),
    "api-health.json": (None, _healthy),
    "api-list-jobs.json": ("failed", _listed_failed),
    "authorizer-request.json": ("key", _authenticated),
    "authorizer-unknown-key.json": (None, _unknown_key),
    "dispatcher-queued-insert.json": (None, _dispatched),
    "events-job-completed.json": ("subscribed", _announced),
    "scheduler-minute.json": (None, _swept),
    "worker-email-batch.json": ("queued", _worked),
}


@pytest.mark.parametrize("event_file", EVENTS, ids=lambda p: p.name)
def test_sample_event_has_its_expected_outcome(stack, event_file):
    assert event_file.name in EXPECTED, f"{event_file.name}: add its expected outcome to EXPECTED"
    seed, expect = EXPECTED[event_file.name]
    if seed:
        _seed(seed)
    spec = _function_for(stack, event_file)

    result = load_handler(spec)(json.loads(event_file.read_text()), LambdaContext(spec))

    expect(stack, result)


def test_samples_cover_every_function(stack):
    covered = {_function_for(stack, f).logical_id for f in EVENTS}
    assert covered == set(stack.functions)
    assert set(EXPECTED) == {f.name for f in EVENTS}
