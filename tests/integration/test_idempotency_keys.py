"""Idempotency-Key: a key names one job while that job exists; a deleted job's key is free again. And the key's
cheaper form for domain code: a job id derived from what the job is for (a reminder's firing)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from factories import email_job

from tests.conftest import Api


def test_a_key_whose_job_was_bulk_deleted_makes_a_new_job(stack, new_key):
    api = Api(stack, new_key("tenant-a", "jobs:read,jobs:write,admin"))
    # Given a job made with an Idempotency-Key, completed, then deleted by the bulk delete
    first = api.post("/v1/jobs", email_job(), headers={"idempotency-key": "welcome-ann"})
    assert first.status == 202
    stack.drain()
    deleted = api.request("DELETE", f"/v1/jobs?state=completed&before={quote('2999-01-01T00:00:00Z')}")
    assert deleted.status == 200 and deleted.json()["changed"] == 1, deleted.body

    # When the same key is used again
    again = api.post("/v1/jobs", email_job(), headers={"idempotency-key": "welcome-ann"})

    # Then a new job is accepted (not 409 "in progress" for the rest of the key's window), and replays of the
    # key now return that new job
    assert again.status == 202, again.body
    assert again.json()["id"] != first.json()["id"]
    replay = api.post("/v1/jobs", email_job(), headers={"idempotency-key": "welcome-ann"})
    assert (replay.status, replay.json()["id"]) == (200, again.json()["id"])


def test_a_key_still_naming_a_live_job_refuses_a_different_request(api):
    api.post("/v1/jobs", email_job(), headers={"idempotency-key": "k1"})
    other = api.post("/v1/jobs", email_job(max_attempts=1), headers={"idempotency-key": "k1"})
    assert other.status == 409 and "different request" in other.json()["error"]["message"]


def _welcome() -> object:
    from conveyor import jobs

    return jobs.NewJob("email.send", {"to": ["ann@example.com"], "template": "welcome"})


def test_a_derived_job_id_makes_one_job_and_a_repeat_returns_it(stack, atomic_dynamodb):
    from conveyor import jobs

    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    job_id = jobs.derived_job_id("reminder:rem#a1#PT24H:1796115600", at)
    # The same seed and time give the same id, a valid job id that sorts at `at`; another seed another id
    assert job_id == jobs.derived_job_id("reminder:rem#a1#PT24H:1796115600", at)
    assert job_id != jobs.derived_job_id("reminder:rem#a1#PT24H:1796119200", at)
    from conveyor.platform.ids import ulid_ms

    assert job_id.startswith("job_") and ulid_ms(job_id) == int(at.timestamp() * 1000)

    # When two sweeps enqueue it at once, on two threads
    results: list[tuple[object, bool]] = []
    start = threading.Barrier(2)

    def enqueue() -> None:
        start.wait(timeout=30)
        results.append(jobs.enqueue("tenant-a", _welcome(), job_id=job_id))

    threads = [threading.Thread(target=enqueue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then one created it and the other was answered with that job; one job is stored, and another tenant's
    # job with the same derived id is its own
    assert sorted(created for _, created in results) == [False, True]
    assert {job.id for job, _ in results} == {job_id}
    stored, _ = jobs.list_jobs("tenant-a", state=None, job_type=None, limit=10, cursor=None)
    assert [job.id for job in stored] == [job_id]
    other, created = jobs.enqueue("tenant-b", _welcome(), job_id=job_id)
    assert created and other.tenant_id == "tenant-b"


def test_a_derived_job_id_and_an_idempotency_key_are_not_given_together(stack):
    from conveyor import jobs

    with pytest.raises(ValueError, match="not both"):
        jobs.enqueue("tenant-a", _welcome(), "k1", job_id=jobs.derived_job_id("x", datetime.now(UTC)))
