"""Idempotency-Key: a key names one job while that job exists; a deleted job's key is free again."""

from __future__ import annotations

from urllib.parse import quote

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
