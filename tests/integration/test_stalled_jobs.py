"""Stalled jobs: an active job whose worker died and whose message never came back is recovered by the
scheduler's sweep (found through the sparse lease index, no scan): sent again, or failed on its last attempt."""

from __future__ import annotations

import pytest

from conveyor.platform.clock import utcnow
from tests.integration.ops_support import EMAIL, dispatch, queue_url


@pytest.fixture
def stall(stack, api):
    """A job a worker claimed and then lost, `lease_ended` seconds ago; its message is gone (e.g. in the DLQ)."""
    from conveyor.jobs import repository as store
    from conveyor.jobs.sweeps import STALL_GRACE_SECONDS

    def make(max_attempts: int = 3, lease_ended: int = STALL_GRACE_SECONDS + 60) -> str:
        job_id = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL, "max_attempts": max_attempts}).json()[
            "id"
        ]
        dispatch(stack)
        sqs, url = stack.client("sqs"), queue_url(stack, "email")
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert store.claim("tenant-a", job_id, lease_seconds=-lease_ended) is not None
        return job_id

    return make


def test_a_stalled_job_is_sent_again_and_runs_spending_an_attempt(stack, api, stall):
    job_id = stall()
    # When the scheduler runs
    results = stack.fire_schedules()
    # Then the job is queued again with its stalled attempt spent and the reason on its timeline
    assert results[0]["recover_stalled_jobs"] == 1
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("queued", 1)
    assert job["error"]["type"] == "Stalled"
    assert "stalled" in job["timeline"][-1]["note"]
    # And the outbox sends it again: the worker runs it as its second attempt
    stack.drain()
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("completed", 2)


def test_a_job_that_stalls_on_its_last_attempt_fails(stack, api, stall):
    job_id = stall(max_attempts=1)
    stack.fire_schedules()
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "failed" and job["error"]["type"] == "Stalled"
    assert "last attempt" in job["timeline"][-1]["note"]
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"


def test_a_lease_that_ended_recently_is_left_to_the_queue(stack, api, stall):
    # Given a lease that ended a moment ago: the message may still come back from the queue by itself
    job_id = stall(lease_ended=30)
    # When the scheduler runs, Then the job is not touched
    assert stack.fire_schedules()[0]["recover_stalled_jobs"] == 0
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "active"


def test_a_job_reclaimed_by_its_own_redelivered_message_is_not_recovered_twice(stack, api, stall):
    from conveyor.jobs import repository as store
    from conveyor.jobs.sweeps import STALL_GRACE_SECONDS

    job_id = stall()
    (key,) = [k for k in store.stalled_keys(utcnow()) if k[1] == job_id]
    # Given the message came back and a worker re-claimed the job (a new lease) after the sweep read the index
    assert store.claim("tenant-a", job_id, lease_seconds=60) is not None
    # When the sweep acts on what it read, Then the conditional update leaves the job to its worker
    assert store.recover_stalled(*key) is None
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("active", 2)
    assert STALL_GRACE_SECONDS >= 360  # longer than the queues' VisibilityTimeout


def test_jobs_leave_the_lease_index_when_they_finish(stack, api):
    from conveyor.jobs import repository as store

    api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL})
    stack.drain()
    far_future = utcnow().replace(year=2100)
    assert list(store.stalled_keys(far_future)) == []
