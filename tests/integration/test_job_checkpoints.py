"""Checkpoint-and-continue, remaining time and lease loss: what a long handler relies on."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from conveyor.jobs import repository
from conveyor.jobs.registry import Continue, JobContext, RetryPolicy, job_type

SEEN: list[Any] = []


class Steps(BaseModel):
    steps: int


@job_type("test.long", queue="sync", payload=Steps, retry=RetryPolicy(max_attempts=2, max_continues=10))
def _long(payload: Steps, ctx: JobContext) -> dict[str, Any]:
    done = (ctx.checkpoint or {}).get("done", 0)
    SEEN.append((done, ctx.attempt, ctx.remaining_seconds() > 0))
    if done + 1 < payload.steps:
        raise Continue({"done": done + 1})
    return {"done": done + 1}


def test_a_job_continues_from_its_checkpoint_without_spending_attempts(api, stack):
    SEEN.clear()
    job = api.post("/v1/jobs", {"type": "test.long", "payload": {"steps": 4}}).json()

    stack.drain()

    final = api.get(f"/v1/jobs/{job['id']}").json()
    assert final["state"] == "completed" and final["result"] == {"done": 4}
    assert SEEN == [(0, 1, True), (1, 1, True), (2, 1, True), (3, 1, True)]  # attempt 1 every run
    assert final["attempts"] == 1


def test_a_job_that_continues_past_its_limit_fails(api, stack):
    job = api.post("/v1/jobs", {"type": "test.long", "payload": {"steps": 50}}).json()

    stack.drain(max_rounds=100)

    final = api.get(f"/v1/jobs/{job['id']}").json()
    assert final["state"] == "failed" and final["error"]["type"] == "ContinuedTooOften"


class Probe(BaseModel):
    pass


LEASE: list[bool] = []


@job_type("test.lease", queue="sync", payload=Probe, retry=RetryPolicy(max_attempts=1))
def _lease(payload: Probe, ctx: JobContext) -> None:
    LEASE.append(ctx.report_progress(10))
    model = repository._jobs()  # another delivery takes the job over (its attempt number moves on)
    model(ctx.tenant_id, ctx.job_id).update(actions=[model.attempts.add(1)])
    LEASE.append(ctx.report_progress(20))


def test_report_progress_tells_the_handler_it_lost_its_lease(api, stack):
    LEASE.clear()
    api.post("/v1/jobs", {"type": "test.lease", "payload": {}})

    stack.drain()

    assert LEASE == [True, False]
