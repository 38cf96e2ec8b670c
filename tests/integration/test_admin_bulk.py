"""Bulk job operations: retry failed jobs, delete finished ones. Bounded per call, resumable, one tenant only."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.integration.ops_support import ago, make_job


@pytest.fixture
def admin(stack, new_key) -> Api:
    return Api(stack, new_key("tenant-a", "admin"))


def state_of(job) -> str | None:
    from conveyor.jobs import repository as store

    found = store.get(job.tenant_id, job.id, consistent=True)
    return found.state if found else None


# --- POST /v1/jobs/retry-failed ---------------------------------------------------------------------------
def test_retry_failed_requeues_the_callers_failed_jobs_and_never_another_tenants(stack, admin):
    # Given tenant-a has two failed jobs and a completed one, and tenant-b has a failed job
    failed = [make_job("tenant-a", "failed") for _ in range(2)]
    done = make_job("tenant-a", "completed")
    other = make_job("tenant-b", "failed")
    # When tenant-a's admin retries failed jobs
    response = admin.post("/v1/jobs/retry-failed", {})
    # Then its two failed jobs are queued again (with fresh attempts) and nothing else changed
    assert response.status == 200, response.body
    assert response.json() == {"changed": 2, "skipped": 0, "examined": 3, "next_cursor": None}
    assert [state_of(j) for j in failed] == ["queued", "queued"]
    assert state_of(done) == "completed"
    assert state_of(other) == "failed"
    # And the dispatcher and worker run them to completion
    stack.drain()
    assert [state_of(j) for j in failed] == ["completed", "completed"]


def test_retry_failed_filters_by_type_and_creation_time(admin):
    old = make_job("tenant-a", "failed", created=ago(days=3))
    recent = make_job("tenant-a", "failed", created=ago(hours=1))
    other_type = make_job("tenant-a", "failed", job_type="report.build", queue="reports", created=ago(hours=1))
    response = admin.post("/v1/jobs/retry-failed", {"type": "email.send", "since": ago(days=1).isoformat()})
    assert response.json()["changed"] == 1
    assert (state_of(old), state_of(recent), state_of(other_type)) == ("failed", "queued", "failed")


def test_retry_failed_is_bounded_per_call_and_the_cursor_resumes_without_repeats(admin):
    # Given five failed jobs
    jobs = [make_job("tenant-a", "failed", created=ago(minutes=10 - i)) for i in range(5)]
    # When the admin retries two at a time, following the cursor
    calls, cursor, changed = 0, None, 0
    while True:
        body = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        result = admin.post("/v1/jobs/retry-failed", body).json()
        calls, changed, cursor = calls + 1, changed + result["changed"], result["next_cursor"]
        assert result["changed"] <= 2
        if cursor is None:
            break
    # Then every job was retried exactly once, over three calls
    assert changed == 5 and calls == 3
    assert {state_of(j) for j in jobs} == {"queued"}


def test_retry_failed_rejects_a_forged_cursor_and_bad_fields(admin):
    assert admin.post("/v1/jobs/retry-failed", {"cursor": "bm90LWEtam9i"}).status == 400
    assert admin.post("/v1/jobs/retry-failed", {"limit": 1000}).status == 422
    assert admin.post("/v1/jobs/retry-failed", {"since": "yesterday"}).status == 422


# --- DELETE /v1/jobs?state=&before= -----------------------------------------------------------------------
def test_delete_removes_the_callers_finished_jobs_before_the_instant_only(admin):
    # Given tenant-a has jobs completed 3 days ago and today, a failed one, and tenant-b an old completed job
    old = [make_job("tenant-a", "completed", created=ago(days=3, minutes=i), finished=ago(days=3)) for i in range(2)]
    today = make_job("tenant-a", "completed", created=ago(hours=2), finished=ago(hours=1))
    failed = make_job("tenant-a", "failed", created=ago(days=3), finished=ago(days=3))
    other = make_job("tenant-b", "completed", created=ago(days=3), finished=ago(days=3))
    # When the admin deletes completed jobs that finished before yesterday
    before = ago(days=1).isoformat().replace("+00:00", "Z")
    response = admin.request("DELETE", f"/v1/jobs?state=completed&before={before}")
    # Then only tenant-a's old completed jobs are gone
    assert response.status == 200, response.body
    assert response.json()["changed"] == 2 and response.json()["next_cursor"] is None
    assert [state_of(j) for j in old] == [None, None]
    assert (state_of(today), state_of(failed), state_of(other)) == ("completed", "failed", "completed")


def test_delete_is_bounded_per_call_and_resumable(admin):
    jobs = [make_job("tenant-a", "cancelled", created=ago(days=2, minutes=i), finished=ago(days=2)) for i in range(3)]
    first = admin.request("DELETE", "/v1/jobs?state=cancelled&before=2100-01-01T00:00:00Z&limit=2").json()
    assert first["changed"] == 2 and first["next_cursor"]
    second = admin.request(
        "DELETE", f"/v1/jobs?state=cancelled&before=2100-01-01T00:00:00Z&limit=2&cursor={first['next_cursor']}"
    ).json()
    assert second["changed"] == 1 and second["next_cursor"] is None
    assert [state_of(j) for j in jobs] == [None, None, None]


@pytest.mark.parametrize(
    "query",
    [
        "state=active&before=2100-01-01T00:00:00Z",
        "state=completed",
        "state=completed&before=tomorrow",
        "before=2100-01-01T00:00:00Z",
    ],
)
def test_delete_only_takes_finished_states_and_an_instant(admin, query):
    assert admin.request("DELETE", f"/v1/jobs?{query}").status == 422
