"""Factories for the operations tests: jobs in any state, messages in a DLQ, an admin client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor_local.event_sources import StreamSource

EMAIL = {"to": ["patient@example.com"], "subject": "Your appointment", "text": "See you on Monday."}


def make_job(
    tenant: str,
    state: str,
    *,
    job_type: str = "email.send",
    queue: str = "email",
    created: datetime | None = None,
    finished: datetime | None = None,
    attempts: int = 1,
    max_attempts: int = 3,
    expires_at: int | None = None,
    payload: dict[str, Any] | None = None,
    error: str = "SES MessageRejected",
) -> Any:
    """A job stored directly in a given state (as the engine would have left it)."""
    from conveyor.jobs import repository
    from conveyor.jobs.domain import Job, JobError, TimelineEvent
    from conveyor.platform.ids import ulid

    now = datetime.now(UTC)
    created = created or now
    finished = finished or (now if state in ("completed", "failed", "cancelled") else None)
    job = Job(
        tenant_id=tenant,
        id=f"job_{ulid(int(created.timestamp() * 1000))}",
        type=job_type,
        queue=queue,
        state=state,
        payload=payload if payload is not None else EMAIL,
        attempts=attempts,
        max_attempts=max_attempts,
        created_at=created,
        updated_at=finished or created,
        finished_at=finished,
        error=JobError("PermanentError", error) if state == "failed" else None,
        expires_at=expires_at,
        timeline=(TimelineEvent(state, finished or created),),
    )
    repository.insert(job)
    return job


def dispatch(stack: Any) -> None:
    """Run only the dispatcher: queued jobs become queue messages, nothing consumes them."""
    for source in stack.sources:
        if isinstance(source, StreamSource):
            while stack.pump(source):
                pass


def exhaust_receives(stack: Any, family: str) -> int:
    """Receive everything in a family's queue until SQS's redrive policy moves it to the DLQ (as happens when
    the worker cannot handle a message at all, maxReceiveCount times). Returns the DLQ's depth."""
    sqs = stack.client("sqs")
    url = json.loads(stack.functions["WorkerFunction"].environment["QUEUES"])[family]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    policy = json.loads(attributes["RedrivePolicy"])
    for _ in range(int(policy["maxReceiveCount"]) + 1):
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return depth(stack, dlq_url(stack, family))


def queue_url(stack: Any, family: str) -> str:
    return json.loads(stack.functions["WorkerFunction"].environment["QUEUES"])[family]


def dlq_url(stack: Any, family: str) -> str:
    sqs = stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url(stack, family), AttributeNames=["RedrivePolicy"])
    arn = json.loads(attributes["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
    return sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]


def depth(stack: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)
