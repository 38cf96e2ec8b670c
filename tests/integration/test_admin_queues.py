"""Admin API over the shared queues: overview, dead letters, redrive, pause/resume, and who may do what."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Api
from tests.integration.ops_support import (
    EMAIL,
    ago,
    depth,
    dispatch,
    dlq_url,
    exhaust_receives,
    make_job,
    queue_url,
)


@pytest.fixture
def admin(stack, new_key) -> Api:
    return Api(stack, new_key("tenant-a", "admin"))


@pytest.fixture
def operator(stack, new_key) -> Api:
    return Api(stack, new_key("platform-ops", "admin,platform"))


def enqueue(api: Api, n: int = 1) -> list[str]:
    ids = []
    for _ in range(n):
        response = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL})
        assert response.status == 202, response.body
        ids.append(response.json()["id"])
    return ids


def email_queue(overview: dict) -> dict:
    return next(q for q in overview["queues"] if q["name"] == "email")


# --- access ----------------------------------------------------------------------------------------------
ADMIN_ROUTES = [
    ("GET", "/v1/queues", None),
    ("GET", "/v1/queues/email/dead-letters", None),
    ("POST", "/v1/queues/email/redrive", {}),
    ("POST", "/v1/queues/email/pause", None),
    ("POST", "/v1/queues/email/resume", None),
    ("POST", "/v1/jobs/retry-failed", {}),
    ("DELETE", "/v1/jobs?state=completed&before=2030-01-01T00:00:00Z", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_key_without_admin_scope_is_refused_every_admin_route(api_as, method, path, body):
    # Given a key that can read and write jobs, but is not an admin key
    reader = api_as("tenant-a", "jobs:read,jobs:write")
    # When it calls an admin route
    response = reader.request(method, path, body)
    # Then it is refused with 403, naming the scope it lacks
    assert response.status == 403
    assert response.json()["error"]["details"]["required_scope"] == "admin"


@pytest.mark.parametrize("path", ["/v1/queues/email/pause", "/v1/queues/email/resume"])
def test_pausing_a_shared_queue_needs_the_platform_scope_not_just_admin(admin, path):
    # Given a tenant's admin key (admin implies every scope of its own tenant, not platform)
    # When it tries to pause or resume a queue every tenant shares
    response = admin.post(path)
    # Then it is refused: that would stop other tenants' jobs
    assert response.status == 403
    assert response.json()["error"]["details"]["required_scope"] == "platform"


def test_an_unknown_queue_is_404(admin):
    response = admin.get("/v1/queues/nope/dead-letters")
    assert response.status == 404
    assert "email" in response.json()["error"]["details"]["queues"]


# --- overview ---------------------------------------------------------------------------------------------
def test_overview_shows_queue_depths_and_only_the_callers_job_counts(stack, api, api_as, admin):
    # Given tenant-a ran two email jobs to completion and has one more waiting in the queue,
    enqueue(api, 2)
    stack.drain()
    enqueue(api, 1)
    dispatch(stack)
    # and tenant-b has jobs of its own, including a failed one
    enqueue(api_as("tenant-b"), 3)
    make_job("tenant-b", "failed")
    dispatch(stack)

    # When tenant-a's admin looks at the queues
    response = admin.get("/v1/queues")

    # Then the email queue shows the messages waiting (all tenants': SQS numbers name nobody)
    assert response.status == 200, response.body
    email = email_queue(response.json())
    assert email["messages"] == {"visible": 4, "in_flight": 0, "delayed": 0}
    assert email["dead_letters"] == {"depth": 0, "oldest_age_seconds": None}
    assert email["paused"] is False
    # and job counts are tenant-a's own only
    assert email["jobs"]["by_state"]["completed"] == 2
    assert email["jobs"]["by_state"]["queued"] == 1
    assert email["jobs"]["by_state"]["failed"] == 0
    assert email["jobs"]["completed_last_hour"] == 2
    assert email["jobs"]["failed_last_hour"] == 0
    assert response.json()["jobs_window"]["complete"] is True
    assert {q["name"] for q in response.json()["queues"]} == {
        "email",
        "notifications",
        "reminders",
        "reports",
        "webhooks",
        "sync",
    }


def test_overview_counts_recent_failures_and_leaves_older_jobs_out_of_the_last_hour(admin):
    # Given one job failed ten minutes ago and one completed three hours ago
    make_job("tenant-a", "failed", created=ago(minutes=12), finished=ago(minutes=10))
    make_job("tenant-a", "completed", created=ago(minutes=190), finished=ago(minutes=180))
    # When the admin looks at the queues
    jobs = email_queue(admin.get("/v1/queues").json())["jobs"]
    # Then both are counted by state, but only the failure is "in the last hour"
    assert jobs["by_state"]["failed"] == 1 and jobs["by_state"]["completed"] == 1
    assert jobs["failed_last_hour"] == 1 and jobs["completed_last_hour"] == 0


def test_overview_reports_dead_letter_depth_and_the_age_of_the_oldest(stack, api, admin):
    # Given a job whose message the worker could never handle: SQS moved it to the DLQ
    enqueue(api)
    dispatch(stack)
    assert exhaust_receives(stack, "email") == 1
    # When the admin looks at the queues
    email = email_queue(admin.get("/v1/queues").json())
    # Then the DLQ depth and the age of its oldest message are shown
    assert email["dead_letters"]["depth"] == 1
    assert 0 <= email["dead_letters"]["oldest_age_seconds"] < 120
    # and looking did not take the message out of the DLQ
    assert depth(stack, dlq_url(stack, "email")) == 1


# --- dead letters -----------------------------------------------------------------------------------------
@pytest.fixture
def dead_letters(stack, api, api_as):
    """Two of tenant-a's jobs and one of tenant-b's, all dead-lettered from the email queue."""
    mine = enqueue(api, 2)
    theirs = enqueue(api_as("tenant-b"), 1)
    dispatch(stack)
    assert exhaust_receives(stack, "email") == 3
    return mine, theirs


def test_peek_shows_only_the_callers_dead_letters_and_consumes_nothing(stack, admin, dead_letters):
    mine, _ = dead_letters
    # When tenant-a's admin peeks at the email DLQ
    response = admin.get("/v1/queues/email/dead-letters?limit=10")
    # Then it sees its own two messages, with each job's current state, and not tenant-b's
    assert response.status == 200, response.body
    page = response.json()
    assert sorted(m["job_id"] for m in page["messages"]) == sorted(mine)
    assert {m["tenant_id"] for m in page["messages"]} == {"tenant-a"}
    assert all(m["job"]["state"] == "queued" and m["receive_count"] >= 1 for m in page["messages"])
    assert page["examined"] == 3 and page["depth"] == 3
    # And every message is back in the DLQ, visible at once: peeking again sees them all again
    assert depth(stack, dlq_url(stack, "email")) == 3
    assert len(admin.get("/v1/queues/email/dead-letters").json()["messages"]) == 2


def test_peek_respects_the_limit(admin, dead_letters):
    assert len(admin.get("/v1/queues/email/dead-letters?limit=1").json()["messages"]) == 1
    assert admin.get("/v1/queues/email/dead-letters?limit=0").status == 422


def test_only_a_platform_key_may_see_every_tenants_dead_letters(admin, operator, dead_letters):
    mine, theirs = dead_letters
    assert admin.get("/v1/queues/email/dead-letters?all_tenants=true").status == 403
    response = operator.get("/v1/queues/email/dead-letters?all_tenants=true")
    assert response.status == 200
    assert sorted(m["job_id"] for m in response.json()["messages"]) == sorted(mine + theirs)
    # And the operator sees every message's job as it stands now, whichever tenant it belongs to
    assert all(m["job"]["state"] == "queued" for m in response.json()["messages"])


def test_the_platform_view_shows_each_dead_letters_job_with_personal_data_scrubbed(stack, operator, dead_letters):
    # Given tenant-b's failed job, whose error names a recipient, has a message in the email DLQ
    failed = make_job("tenant-b", "failed", error="SES refused ann@example.com")
    body = json.dumps({"tenant_id": "tenant-b", "job_id": failed.id, "type": "email.send"})
    stack.client("sqs").send_message(QueueUrl=dlq_url(stack, "email"), MessageBody=body)
    # When the platform operator peeks at every tenant's dead letters
    messages = operator.get("/v1/queues/email/dead-letters?all_tenants=true&limit=10").json()["messages"]
    # Then the job is shown with its state, and the address in its error is masked
    seen = next(m for m in messages if m["job_id"] == failed.id)
    assert seen["job"]["state"] == "failed"
    assert seen["job"]["error"] == {"type": "PermanentError", "message": "SES refused [email]"}


# --- redrive ----------------------------------------------------------------------------------------------
def test_redrive_moves_only_the_callers_messages_back_and_their_jobs_then_run(stack, api, admin, dead_letters):
    mine, theirs = dead_letters
    # When tenant-a's admin redrives the email DLQ (moto has no StartMessageMoveTask)
    response = admin.post("/v1/queues/email/redrive", {})
    # Then its two messages moved back to the queue, tenant-b's stayed in the DLQ
    assert response.status == 200, response.body
    result = response.json()
    assert result["moved"] == 2 and result["method"] == "receive_send_delete" and result["done"] is True
    assert result["remaining"] == 1
    assert depth(stack, dlq_url(stack, "email")) == 1
    left = stack.client("sqs").receive_message(QueueUrl=dlq_url(stack, "email"))["Messages"]
    assert theirs[0] in left[0]["Body"]
    # And the worker runs the redriven jobs
    stack.drain()
    assert {api.get(f"/v1/jobs/{job_id}").json()["state"] for job_id in mine} == {"completed"}


def test_redrive_moves_at_most_max(stack, admin, dead_letters):
    response = admin.post("/v1/queues/email/redrive", {"max": 1})
    assert response.json()["moved"] == 1 and response.json()["done"] is False
    assert depth(stack, queue_url(stack, "email")) == 1
    assert depth(stack, dlq_url(stack, "email")) == 2


def test_a_platform_redrive_of_everything_falls_back_when_move_tasks_are_missing(stack, admin, operator, dead_letters):
    assert admin.post("/v1/queues/email/redrive", {"all_tenants": True}).status == 403
    # When the operator redrives every tenant's messages (SQS's move task is tried first; moto lacks it)
    response = operator.post("/v1/queues/email/redrive", {"all_tenants": True})
    # Then all three moved by receive/send/delete
    assert response.status == 200, response.body
    assert response.json()["moved"] == 3 and response.json()["method"] == "receive_send_delete"
    assert depth(stack, dlq_url(stack, "email")) == 0
    assert depth(stack, queue_url(stack, "email")) == 3


def test_redrive_rejects_unknown_fields(admin):
    assert admin.post("/v1/queues/email/redrive", {"maximum": 5}).status == 422


# --- pause / resume ---------------------------------------------------------------------------------------
def test_a_paused_queue_keeps_its_jobs_waiting_until_resumed(stack, api, admin, operator):
    # Given the operator paused the email queue
    response = operator.post("/v1/queues/email/pause")
    assert response.status == 200, response.body
    assert response.json() == {"queue": "email", "paused": True, "mapping_state": "Disabled"}
    assert email_queue(admin.get("/v1/queues").json())["paused"] is True
    # When a job is enqueued and everything runs
    (job_id,) = enqueue(api)
    stack.drain()
    # Then it waits in the queue: the worker's mapping is disabled
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"
    assert depth(stack, queue_url(stack, "email")) == 1
    # And once resumed, it runs
    assert operator.post("/v1/queues/email/resume").json()["paused"] is False
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "completed"
    assert email_queue(admin.get("/v1/queues").json())["paused"] is False


def test_pausing_one_queue_leaves_the_others_running(stack, operator):
    operator.post("/v1/queues/reports/pause")
    states = {q["name"]: q["paused"] for q in operator.get("/v1/queues").json()["queues"]}
    assert states == {
        "email": False,
        "notifications": False,
        "reminders": False,
        "reports": True,
        "webhooks": False,
        "sync": False,
    }


@pytest.mark.parametrize(
    ("limit", "value", "counted"),
    [
        ("MAX_COUNTED", 3, 4),  # at most so many jobs: the page that passes the cap is the last one read
        ("COUNT_SECONDS", 0.0, 2),  # at most so long: a table so slow the budget is spent after the first page
    ],
)
def test_job_counts_are_bounded_and_say_what_they_cover(admin, monkeypatch, limit, value, counted):
    from conveyor.admin import service

    # Given more jobs in the window than one overview reads (pages of 2, and the limit shrunk for the test)
    monkeypatch.setattr(service, "COUNT_PAGE", 2)
    monkeypatch.setattr(service, limit, value)
    jobs = [make_job("tenant-a", "completed", created=ago(minutes=50 - i)) for i in range(5)]
    # When the admin looks at the queues
    overview = admin.get("/v1/queues").json()
    # Then the newest jobs are counted and the window says it is partial, and from when
    assert overview["jobs_window"]["complete"] is False and overview["jobs_window"]["counted"] == counted
    assert email_queue(overview)["jobs"]["by_state"]["completed"] == counted
    assert overview["jobs_window"]["since"][:16] == jobs[5 - counted].created_at.isoformat()[:16]


def test_redrive_needs_no_body(admin, dead_letters):
    response = admin.post("/v1/queues/email/redrive")
    assert response.status == 200 and response.json()["moved"] == 2
