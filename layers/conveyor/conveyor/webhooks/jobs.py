"""Webhook job types on the `webhooks` queue.

`webhook.deliver` performs one attempt of one delivery. Receiver failures are not job failures: the delivery
records them and schedules its next attempt as a new job (the schedule is the delivery's, not the engine's), so
the job's own retries (3, quick) only cover our side failing (DynamoDB, KMS, a crash).
`webhook.recover` walks a subscription's failed and skipped deliveries in order, handing on to a next job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from conveyor.jobs.registry import JobContext, RetryPolicy, job_type
from conveyor.platform.clock import Instant
from conveyor.webhooks import service
from conveyor.webhooks.domain import Trigger

_OUR_SIDE = RetryPolicy(max_attempts=3, base_seconds=5, cap_seconds=60)


class DeliverPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=64)
    delivery_id: str = Field(min_length=1, max_length=64)
    expected_attempts: StrictInt = Field(ge=0)
    trigger: Trigger = Trigger.SCHEDULED


class RecoverPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=64)
    since: Instant
    after: str | None = Field(default=None, max_length=64)


@job_type(service.DELIVER_JOB, queue="webhooks", payload=DeliverPayload, retry=_OUR_SIDE)
def deliver(payload: DeliverPayload, job: JobContext) -> dict[str, Any]:
    return service.deliver(
        job.tenant_id, payload.subscription_id, payload.delivery_id, payload.expected_attempts, payload.trigger
    )


@job_type(service.RECOVER_JOB, queue="webhooks", payload=RecoverPayload, retry=_OUR_SIDE)
def recover(payload: RecoverPayload, job: JobContext) -> dict[str, Any]:
    since: datetime = payload.since
    return service.recover_step(job.tenant_id, payload.subscription_id, since, payload.after)
