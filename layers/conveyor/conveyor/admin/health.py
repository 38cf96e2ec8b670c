"""Readiness: can this deployment do its work right now? DynamoDB and SQS answer; DLQ depths for the record.

Probes use short-timeout, no-retry clients, so a dependency that is down makes the answer fast, not slow.
A non-empty DLQ does not make the service unready (that is what the DLQ alarms are for); it is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from conveyor.admin import queues
from conveyor.platform.aws import error_code, probe_client
from conveyor.platform.settings import get_settings

# A key no job can have (job ids are "job_<ULID>"): reading it proves the table answers, and costs 0.5 RCU.
PROBE_KEY = {"tenant_id": {"S": "__health__"}, "sk": {"S": "job_readiness_probe"}}


# The report's models live here, not in admin.models, so the API's cold start does not import the admin routes'
# models (nor, through them, the jobs routes'). No docstrings: they would become the schemas' descriptions.
class Check(BaseModel):
    ok: bool
    latency_ms: int
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    failing: list[str] = Field(default_factory=list)
    checks: dict[str, Check]
    dead_letters: dict[str, int] = Field(default_factory=dict)


def readiness() -> Readiness:
    dead_letters: dict[str, int] = {}
    checks = {"dynamodb": _timed(_dynamodb), "sqs": _timed(lambda: dead_letters.update(_sqs()))}
    failing = sorted(name for name, check in checks.items() if not check.ok)
    return Readiness(
        status="unavailable" if failing else "ready", failing=failing, checks=checks, dead_letters=dead_letters
    )


def _dynamodb() -> None:
    probe_client("dynamodb").get_item(
        TableName=get_settings().jobs_table, Key=PROBE_KEY, ProjectionExpression="tenant_id"
    )


def _sqs() -> dict[str, int]:
    sqs = probe_client("sqs")
    depths = {}
    for family in sorted(get_settings().queues):
        ref = queues.queue_ref(family, sqs)
        queues.depths(ref.url, sqs)
        if ref.dlq_url:
            depths[family] = queues.depths(ref.dlq_url, sqs)["ApproximateNumberOfMessages"]
    return depths


def _timed(probe: Callable[[], object]) -> Check:
    started = time.monotonic()
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"; the kind is reported
        return Check(ok=False, latency_ms=_ms(started), error=error_code(exc) or type(exc).__name__)
    return Check(ok=True, latency_ms=_ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
