"""The worker's contract with SQS: retries with backoff, permanent failures, duplicates and poison records."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from factories import email_job, sqs_record
from pydantic import BaseModel

from conveyor.jobs import registry
from conveyor.jobs import repository as store
from conveyor.jobs.domain import Job
from conveyor.jobs.registry import JobContext, RetryPolicy, job_type
from conveyor.platform.clock import utcnow
from conveyor.platform.errors import PermanentError, RetryLater

CALLS: Counter[str] = Counter()
SEEN_PROGRESS: dict[str, int] = {}


class Script(BaseModel):
    """What the scripted job does on each run: ok | transient | permanent | later | progress."""

    outcomes: list[str]


def _scripted(payload: Script, job: JobContext) -> dict[str, Any]:
    CALLS[job.job_id] += 1
    outcome = payload.outcomes[min(CALLS[job.job_id], len(payload.outcomes)) - 1]
    if outcome == "transient":
        raise ConnectionError("provider timed out")
    if outcome == "permanent":
        raise PermanentError("recipient does not exist")
    if outcome == "later":
        raise RetryLater(120, "rate limited")
    if outcome == "progress":
        job.report_progress(40)
        SEEN_PROGRESS[job.job_id] = store.get(job.tenant_id, job.job_id, consistent=True).progress
    return {"runs": CALLS[job.job_id]}


@pytest.fixture(autouse=True)
def scripted_job_type() -> Any:
    """`test.scripted`, registered for each test of this module and removed after it."""
    registry.get("email.send")  # the real job types load first
    job_type(
        "test.scripted",
        queue="sync",
        payload=Script,
        retry=RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=60, max_defers=2),
    )(_scripted)
    yield
    registry._TYPES.pop("test.scripted", None)


def scripted(*outcomes: str, **extra: Any) -> dict[str, Any]:
    return {"type": "test.scripted", "payload": {"outcomes": list(outcomes)}, **extra}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def make_visible(stack: Any, aws_calls: Any) -> None:
    """Let the backoff 'elapse': the delay the worker last set on each message becomes zero."""
    sqs = stack.client("sqs")
    for change in aws_calls("sqs", "ChangeMessageVisibility"):
        try:
            sqs.change_message_visibility(
                QueueUrl=change["QueueUrl"], ReceiptHandle=change["ReceiptHandle"], VisibilityTimeout=0
            )
        except sqs.exceptions.ReceiptHandleIsInvalid:
            pass  # an earlier receive of a message that has since been received again or deleted


def queue_depths(stack: Any, logical_id: str) -> tuple[int, int]:
    url = stack.template.physical[logical_id]
    attrs = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_transient_failure_is_retried_after_a_jittered_backoff_then_completes(api, stack, aws_calls):
    job = api.post("/v1/jobs", scripted("transient", "ok")).json()

    stack.drain()
    retrying = api.get(f"/v1/jobs/{job['id']}").json()
    [change] = aws_calls("sqs", "ChangeMessageVisibility")

    assert retrying["state"] == "retrying" and retrying["attempts"] == 1
    assert retrying["error"] == {"type": "ConnectionError", "message": "provider timed out"}
    assert 1 <= change["VisibilityTimeout"] <= 10  # attempt 1: uniform(0, min(cap 60, base 10 * 2^0))
    assert stack.drain() == 0  # the message waits out its delay

    make_visible(stack, aws_calls)
    stack.drain()

    done = api.get(f"/v1/jobs/{job['id']}").json()
    assert done["state"] == "completed" and done["attempts"] == 2 and done["result"] == {"runs": 2}
    assert [e["state"] for e in done["timeline"]] == ["queued", "active", "retrying", "active", "completed"]


def test_backoff_ceiling_doubles_per_attempt(api, stack, aws_calls):
    job = api.post("/v1/jobs", scripted("transient", "transient", "ok")).json()
    stack.drain()
    make_visible(stack, aws_calls)
    stack.drain()

    first, second = (c["VisibilityTimeout"] for c in aws_calls("sqs", "ChangeMessageVisibility"))
    assert 1 <= first <= 10 and 1 <= second <= 20
    make_visible(stack, aws_calls)
    stack.drain()
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"


def test_permanent_error_fails_once_and_is_never_retried(api, stack, aws_calls):
    job = api.post("/v1/jobs", scripted("permanent", "ok")).json()

    stack.drain()

    failed = api.get(f"/v1/jobs/{job['id']}").json()
    assert failed["state"] == "failed" and failed["attempts"] == 1
    assert failed["error"] == {"type": "PermanentError", "message": "recipient does not exist"}
    assert CALLS[job["id"]] == 1
    assert aws_calls("sqs", "ChangeMessageVisibility") == []
    assert queue_depths(stack, "SyncQueue") == (0, 0)  # acknowledged
    assert queue_depths(stack, "SyncDeadLetterQueue") == (0, 0)


def test_job_fails_after_its_last_attempt_and_the_message_is_acknowledged(api, stack, aws_calls):
    job = api.post("/v1/jobs", scripted("transient", max_attempts=2)).json()

    for _ in range(4):
        stack.drain()
        make_visible(stack, aws_calls)

    failed = api.get(f"/v1/jobs/{job['id']}").json()
    assert failed["state"] == "failed" and failed["attempts"] == 2
    assert failed["error"]["type"] == "ConnectionError"
    assert CALLS[job["id"]] == 2
    assert queue_depths(stack, "SyncQueue") == (0, 0)
    assert queue_depths(stack, "SyncDeadLetterQueue") == (0, 0)


def test_duplicate_delivery_runs_the_handler_once(api, stack):
    job = api.post("/v1/jobs", scripted("ok")).json()
    url = stack.template.physical["SyncQueue"]
    body = json.dumps({"tenant_id": "tenant-a", "job_id": job["id"], "type": "test.scripted"})

    stack.drain()
    stack.client("sqs").send_message(QueueUrl=url, MessageBody=body)  # SQS delivers at least once
    stack.drain()

    assert CALLS[job["id"]] == 1
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"


def test_a_delivery_while_another_worker_holds_the_job_is_dropped(api, stack):
    job = api.post("/v1/jobs", scripted("ok")).json()
    assert store.claim("tenant-a", job["id"], lease_seconds=300) is not None  # another worker is running it

    stack.drain()

    assert CALLS[job["id"]] == 0
    assert queue_depths(stack, "SyncQueue") == (0, 0)
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "active"


def test_a_job_whose_worker_died_is_claimed_again_when_its_lease_has_passed(api, stack):
    job = api.post("/v1/jobs", scripted("ok")).json()
    store.claim("tenant-a", job["id"], lease_seconds=-1)  # a worker claimed it, then timed out
    url = stack.template.physical["SyncQueue"]

    stack.drain()  # the original message: the lease has passed, so this is attempt 2
    stack.client("sqs").send_message(
        QueueUrl=url, MessageBody=json.dumps({"tenant_id": "tenant-a", "job_id": job["id"]})
    )
    stack.drain()

    done = api.get(f"/v1/jobs/{job['id']}").json()
    assert done["state"] == "completed" and done["attempts"] == 2
    assert CALLS[job["id"]] == 1


def test_a_job_whose_worker_died_on_the_last_attempt_fails_with_the_reason(api, stack):
    job = api.post("/v1/jobs", scripted("ok", max_attempts=1)).json()
    store.claim("tenant-a", job["id"], lease_seconds=-1)

    stack.drain()

    failed = api.get(f"/v1/jobs/{job['id']}").json()
    assert failed["state"] == "failed" and failed["error"]["type"] == "AttemptsExhausted"
    assert CALLS[job["id"]] == 0


def test_retry_later_defers_without_spending_an_attempt(api, stack, aws_calls):
    job = api.post("/v1/jobs", scripted("later", "ok")).json()

    stack.drain()
    deferred = api.get(f"/v1/jobs/{job['id']}").json()
    [change] = aws_calls("sqs", "ChangeMessageVisibility")
    make_visible(stack, aws_calls)
    stack.drain()

    assert deferred["state"] == "retrying" and deferred["attempts"] == 0
    assert change["VisibilityTimeout"] == 120
    done = api.get(f"/v1/jobs/{job['id']}").json()
    assert done["state"] == "completed" and done["attempts"] == 1


def test_retry_later_is_bounded(api, stack, aws_calls):
    job = api.post("/v1/jobs", scripted("later")).json()  # max_defers=2 for this type

    for _ in range(4):
        stack.drain()
        make_visible(stack, aws_calls)

    failed = api.get(f"/v1/jobs/{job['id']}").json()
    assert failed["state"] == "failed" and failed["error"]["type"] == "DeferredTooLong"
    assert CALLS[job["id"]] == 3


def test_progress_reported_by_a_handler_is_visible_while_it_runs(api, stack):
    job = api.post("/v1/jobs", scripted("progress")).json()

    stack.drain()

    assert SEEN_PROGRESS[job["id"]] == 40
    assert api.get(f"/v1/jobs/{job['id']}").json()["progress"] == 100


def _insert_job(stack: Any, job_type: str, payload: dict[str, Any], queue: str = "sync") -> str:
    from conveyor.platform.ids import new_id

    now = utcnow()
    record = Job(
        tenant_id="tenant-a",
        id=new_id("job"),
        type=job_type,
        queue=queue,
        state="queued",
        payload=payload,
        max_attempts=3,
        created_at=now,
        updated_at=now,
    )
    store.insert(record)
    return record.id


def test_poison_records_are_settled_without_failing_the_rest_of_the_batch(api, stack):
    import worker_handler

    from conveyor_local.lambdas import LambdaContext

    good = api.post("/v1/jobs", scripted("ok")).json()["id"]
    unknown = _insert_job(stack, "ghost.type", {})
    invalid = _insert_job(stack, "email.send", {"to": []}, queue="email")
    arn = stack.template.attributes["SyncQueue"]["Arn"]
    event = {
        "Records": [
            sqs_record("this is not json", queue_arn=arn),
            sqs_record({"hello": "no job named"}, queue_arn=arn),
            sqs_record({"tenant_id": "tenant-a", "job_id": unknown}, queue_arn=arn),
            sqs_record({"tenant_id": "tenant-a", "job_id": invalid}, queue_arn=arn),
            sqs_record({"tenant_id": "tenant-a", "job_id": good}, queue_arn=arn),
        ]
    }

    response = worker_handler.handler(event, LambdaContext(stack.functions["WorkerFunction"]))

    assert response == {"batchItemFailures": []}  # every record is settled: nothing comes back
    assert api.get(f"/v1/jobs/{good}").json()["state"] == "completed"
    ghost = api.get(f"/v1/jobs/{unknown}").json()
    assert ghost["state"] == "failed" and ghost["error"]["type"] == "UnknownJobType"
    bad = api.get(f"/v1/jobs/{invalid}").json()
    assert bad["state"] == "failed" and bad["error"]["type"] == "InvalidPayload"
    assert "to" in bad["error"]["message"]


def test_a_record_the_worker_cannot_process_returns_to_the_queue_alone(api, stack, monkeypatch):
    import worker_handler
    from botocore.exceptions import ClientError

    from conveyor_local.lambdas import LambdaContext

    good = api.post("/v1/jobs", scripted("ok")).json()["id"]
    unlucky = api.post("/v1/jobs", scripted("ok")).json()["id"]
    real_claim = store.claim

    def throttled_for_one_job(tenant_id: str, job_id: str, **kw: Any) -> Any:
        if job_id == unlucky:  # DynamoDB throttles this one write
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
        return real_claim(tenant_id, job_id, **kw)

    monkeypatch.setattr(store, "claim", throttled_for_one_job)
    arn = stack.template.attributes["SyncQueue"]["Arn"]
    broken = sqs_record({"tenant_id": "tenant-a", "job_id": unlucky}, queue_arn=arn)
    event = {"Records": [broken, sqs_record({"tenant_id": "tenant-a", "job_id": good}, queue_arn=arn)]}

    response = worker_handler.handler(event, LambdaContext(stack.functions["WorkerFunction"]))

    assert response == {"batchItemFailures": [{"itemIdentifier": broken["messageId"]}]}
    assert api.get(f"/v1/jobs/{good}").json()["state"] == "completed"
    assert api.get(f"/v1/jobs/{unlucky}").json()["state"] == "queued"  # untouched: its message comes back


def test_ses_rejecting_the_sender_is_a_permanent_failure(api, stack, sent_emails):
    stack.client("sesv2").delete_email_identity(EmailIdentity=stack.template.parameters["EmailFrom"])
    job = api.post("/v1/jobs", email_job()).json()

    stack.drain()

    failed = api.get(f"/v1/jobs/{job['id']}").json()
    assert failed["state"] == "failed" and failed["attempts"] == 1
    assert failed["error"]["type"] == "PermanentError" and "SES" in failed["error"]["message"]
    assert sent_emails() == []


def test_email_with_a_template_variable_missing_fails_permanently(api, stack, sent_emails):
    job = api.post("/v1/jobs", email_job(payload={"to": ["a@example.com"], "template": "welcome"})).json()

    stack.drain()

    failed = api.get(f"/v1/jobs/{job['id']}").json()
    assert failed["state"] == "failed" and "needs a context value" in failed["error"]["message"]
    assert sent_emails() == []
