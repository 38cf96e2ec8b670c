"""The test process type `test.fanout`: a driver declaring `batches` batches, batch jobs with scripted outcomes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from conveyor.jobs.registry import JobContext, RetryPolicy, job_type
from conveyor.platform.errors import PermanentError
from conveyor.processes import process_type

RUNS: dict[str, int] = {}  # batch key -> times its handler ran


class FanoutParams(BaseModel):
    """`batches` batches of `size` records; batch i's outcome is outcomes[i] (default all succeeded)."""

    batches: int = Field(default=3, ge=0, le=500)
    size: int = 10
    outcomes: dict[str, dict[str, int]] = Field(default_factory=dict)  # str(i) -> {succeeded, failed, skipped}
    broken: list[int] = Field(default_factory=list)  # batches whose job fails for good
    fetch_done: bool = True
    children: list[dict[str, Any]] = Field(default_factory=list)  # [{params, policy}]


class DriverPayload(BaseModel):
    process_id: str


class BatchPayload(BaseModel):
    i: int


@job_type("test.fanout.driver", queue="sync", payload=DriverPayload, retry=RetryPolicy(max_attempts=2))
def _driver(payload: DriverPayload, ctx: JobContext) -> dict[str, Any]:
    params = FanoutParams.model_validate(ctx.process.params)
    for n, child in enumerate(params.children):
        ctx.process.start_child("test.fanout", child["params"], key=f"child-{n}", policy=child.get("policy", "ignore"))
    ctx.process.add_batches([{"i": i} for i in range(params.batches)], key="all", sizes=[params.size] * params.batches)
    if params.fetch_done:
        ctx.process.fetch_done()
    return {"declared": params.batches}


@job_type("test.fanout.batch", queue="sync", payload=BatchPayload, retry=RetryPolicy(max_attempts=1))
def _batch(payload: BatchPayload, ctx: JobContext) -> dict[str, Any]:
    RUNS[ctx.process.batch_key] = RUNS.get(ctx.process.batch_key, 0) + 1
    params = FanoutParams.model_validate(ctx.process.params)
    if payload.i in params.broken:
        raise PermanentError(f"batch {payload.i} cannot be processed")
    outcome = params.outcomes.get(str(payload.i), {"succeeded": params.size})
    errors = [{"record_id": f"r{payload.i}-{k}", "message": "bad record"} for k in range(outcome.get("failed", 0))]
    ctx.process.record(**outcome, errors=errors)
    return outcome


FANOUT = process_type("test.fanout", params=FanoutParams, driver="test.fanout.driver", batch="test.fanout.batch")
