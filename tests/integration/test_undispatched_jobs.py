"""A queued job whose dispatch failed for good (past the stream mapping's retries) is not lost: the scheduler
finds it through the sparse due index and sends it again through the outbox, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from factories import email_job

from conveyor import scheduler
from tests.integration.ops_support import depth


@pytest.fixture
def sqs_outage(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """While `down`, SQS refuses every message the dispatcher sends (the stream mapping retries, then gives up)."""
    from conveyor.jobs import dispatch

    real, state = dispatch.client, {"down": True}

    class Refusing:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            return {"Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in Entries]}

    monkeypatch.setattr(dispatch, "client", lambda name: Refusing() if state["down"] and name == "sqs" else real(name))
    return state


def test_a_job_whose_dispatch_failed_for_good_is_sent_again_by_the_scheduler_and_runs_once(
    api, stack, sent_emails, sqs_outage
):
    # Given a job whose dispatch failed past every retry of the stream mapping
    job_id = api.post("/v1/jobs", email_job()).json()["id"]
    for _ in range(5):  # the mapping retries MaximumRetryAttempts (50) times, then sends the batch's metadata
        stack.drain()
        if depth(stack, stack.template.physical["DispatchFailureQueue"]):
            break
    assert depth(stack, stack.template.physical["DispatchFailureQueue"]) == 1
    sqs_outage["down"] = False  # SQS works again, but nothing will send this job by itself
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"
    now = scheduler.utcnow()

    # When the scheduler runs before the grace period is over, Then the job is left alone (still queued)
    scheduler.run(now + timedelta(minutes=5))
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"

    # When it runs after the grace period, twice (overlapping or repeated runs)
    scheduler.run(now + timedelta(minutes=16))
    scheduler.run(now + timedelta(minutes=16))

    # Then the job is sent once more through the outbox and runs, once
    stack.drain()
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("completed", 1)
    assert sum("sent again" in (e["note"] or "") for e in job["timeline"]) == 1
    assert len(sent_emails()) == 1
    # And a job a worker took is never sent again
    assert scheduler.run(now + timedelta(hours=10))["recover_lost_jobs"] == 0
    stack.drain()
    assert len(sent_emails()) == 1


def test_a_job_a_worker_took_leaves_the_dispatch_watch(api, stack):
    # Given a job that was dispatched and ran
    job_id = api.post("/v1/jobs", email_job()).json()["id"]
    stack.drain()
    # When the scheduler runs long after it was due, Then it is not sent again
    assert scheduler.run(scheduler.utcnow() + timedelta(hours=1))["recover_lost_jobs"] == 0
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert not any("sent again" in (e["note"] or "") for e in job["timeline"])
