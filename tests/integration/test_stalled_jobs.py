"""Stalled jobs: an active job whose worker died and whose message never came back is recovered by the
scheduler's sweep, found through the watch entry the job has carried since it was queued (the due index, no
scan, no index of its own): sent again, or failed on its last attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conveyor import scheduler
from conveyor.jobs.domain import DISPATCH_GRACE_SECONDS, STALL_GRACE_SECONDS
from conveyor.platform.clock import utcnow
from tests.integration.ops_support import EMAIL, dispatch, queue_url

# When the scheduler first looks at a job queued now: its watch check comes DISPATCH_GRACE_SECONDS after it was due
FIRST_CHECK = timedelta(seconds=DISPATCH_GRACE_SECONDS + 60)


@pytest.fixture
def stall(stack, api):
    """A job a worker claimed with a lease of `lease_seconds` and then lost; its message is gone (e.g. in the DLQ)."""
    from conveyor.jobs import repository as store

    def make(max_attempts: int = 3, lease_seconds: int = 60) -> str:
        job_id = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL, "max_attempts": max_attempts}).json()[
            "id"
        ]
        dispatch(stack)
        sqs, url = stack.client("sqs"), queue_url(stack, "email")
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert store.claim("tenant-a", job_id, lease_seconds=lease_seconds) is not None
        return job_id

    return make


def test_a_stalled_job_is_sent_again_and_runs_spending_an_attempt(stack, api, stall):
    job_id = stall()
    # When the scheduler runs once the job's check is due (its lease ended long before)
    results = scheduler.run(utcnow() + FIRST_CHECK)
    # Then the job is queued again with its stalled attempt spent and the reason on its timeline
    assert results["recover_lost_jobs"] == 1
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
    scheduler.run(utcnow() + FIRST_CHECK)
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "failed" and job["error"]["type"] == "Stalled"
    assert "last attempt" in job["timeline"][-1]["note"]
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"
    # And a failed job is out of the watch: later runs leave it alone
    assert scheduler.run(utcnow() + timedelta(days=1))["recover_lost_jobs"] == 0


def test_a_job_still_running_at_its_check_is_looked_at_again_after_its_lease(stack, api, stall):
    # Given a job whose worker holds a lease past the first check (a long job)
    job_id = stall(lease_seconds=DISPATCH_GRACE_SECONDS)
    lease_ends = utcnow() + timedelta(seconds=DISPATCH_GRACE_SECONDS)
    # When the scheduler runs at the first check, Then the job is left to its worker
    assert scheduler.run(utcnow() + FIRST_CHECK)["recover_lost_jobs"] == 0
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "active"
    # Nor is it touched while its message may still come back by itself (less than the grace after the lease)
    assert scheduler.run(lease_ends + timedelta(seconds=STALL_GRACE_SECONDS - 60))["recover_lost_jobs"] == 0
    # When nothing came back STALL_GRACE_SECONDS after its lease ended, Then it is recovered
    assert scheduler.run(lease_ends + timedelta(seconds=STALL_GRACE_SECONDS + 60))["recover_lost_jobs"] == 1
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"


def test_a_job_reclaimed_by_its_own_redelivered_message_is_not_recovered_twice(stack, api, stall):
    from conveyor.jobs import repository as store

    job_id = stall(lease_seconds=-60)  # its lease ended a minute ago: a redelivery may take it over
    (key,) = [k for k in store.watched_keys(utcnow() + FIRST_CHECK) if k.job_id == job_id]
    stalled = store.get("tenant-a", job_id)
    # Given the message came back and a worker re-claimed the job (a new lease) after the sweep read it
    assert store.claim("tenant-a", job_id, lease_seconds=60) is not None
    # When the sweep acts on what it read, Then the conditional updates leave the job to its worker
    assert store.recover_stalled("tenant-a", job_id, stalled.lease_until) is None
    assert store.watch_lease(stalled, key.at) is False
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["attempts"]) == ("active", 2)
    assert STALL_GRACE_SECONDS >= 360  # longer than the queues' VisibilityTimeout


def test_jobs_leave_the_watch_when_they_finish(stack, api):
    from conveyor.jobs import repository as store

    job_id = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL}).json()["id"]
    assert [k.job_id for k in store.watched_keys(utcnow() + FIRST_CHECK)] == [job_id]  # watched while queued
    stack.drain()
    far_future = utcnow().replace(year=2100)
    assert list(store.watched_keys(far_future)) == []


def test_a_job_claimed_from_retrying_is_watched_again(stack, api):
    # Given a job that left the watch when its attempt settled as a retry (its message comes back by itself)
    from conveyor.jobs import repository as store

    job_id = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL}).json()["id"]
    dispatch(stack)
    job = store.claim("tenant-a", job_id, lease_seconds=60)
    assert job is not None and store.schedule_retry(job, "Throttled", "slow down", 30)
    assert list(store.watched_keys(utcnow().replace(year=2100))) == []
    # When its next delivery claims it, Then it is watched again, due after its lease and the stall grace
    claimed = store.claim("tenant-a", job_id, lease_seconds=60)
    assert claimed is not None and claimed.lease_until is not None
    (key,) = store.watched_keys(utcnow().replace(year=2100))
    assert key.at == claimed.lease_until + STALL_GRACE_SECONDS
