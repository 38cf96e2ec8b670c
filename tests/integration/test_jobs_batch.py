"""POST /v1/jobs/batch: up to 100 jobs in one request, each checked and stored as POST /v1/jobs would store it
alone (type, scopes, payload, schedule, its own Idempotency-Key), answered item by item in the request's order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import email_job

from conveyor.jobs import repository, service
from conveyor.jobs.domain import NewJob
from conveyor.platform.auth.keys import Principal

BATCH = "/v1/jobs/batch"
NOTIFY = {"type": "notification.send", "payload": {"contact_id": "c1", "subject": "Hi", "text": "Closed Friday"}}


def _emails(count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [
        email_job(payload={"to": [f"user{i}@example.com"], "template": "welcome", "context": {"name": f"U{i}"}})
        | overrides
        for i in range(count)
    ]


def _all_jobs(api: Any) -> list[dict[str, Any]]:
    jobs, cursor = [], None
    while True:
        page = api.get("/v1/jobs?limit=100" + (f"&cursor={cursor}" if cursor else "")).json()
        jobs += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return jobs


def test_a_hundred_jobs_are_created_in_order_and_each_runs_once(api, stack, sent_emails):
    # Given 100 email jobs, each to its own address, and a warm API function (Lambda's init is not its timeout)
    items = _emails(100)
    assert api.get("/v1/jobs").status == 200

    # When they are sent as one batch
    response = api.post(BATCH, {"items": items})

    # Then each is created, answered in the request's order, and each runs exactly once
    assert response.status == 200, response.body[:500]
    results = response.json()["items"]
    assert [(r["index"], r["status"], r["status_code"]) for r in results] == [(i, "created", 202) for i in range(100)]
    assert [r["job"]["payload"]["to"] for r in results] == [i["payload"]["to"] for i in items]
    stack.drain()
    assert sorted(m.destinations["ToAddresses"][0] for m in sent_emails()) == sorted(
        i["payload"]["to"][0] for i in items
    )
    jobs = _all_jobs(api)
    assert len(jobs) == 100 and {(j["state"], j["attempts"]) for j in jobs} == {("completed", 1)}


def test_delayed_and_far_scheduled_items_wait_as_single_ones_do(api, stack, sent_emails):
    # Given a batch with a job for now, one delayed a few minutes and one a day ahead
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    items = [email_job(), email_job(delay_seconds=300), email_job(run_at=later)]

    # When it is sent and everything runnable has run
    results = api.post(BATCH, {"items": items}).json()["items"]
    stack.drain()

    # Then only the first ran; the delayed one waits in its queue (queued), the far one for the scheduler
    states = [api.get(f"/v1/jobs/{r['job']['id']}").json()["state"] for r in results]
    assert states == ["completed", "queued", "scheduled"]
    assert len(sent_emails()) == 1


def test_valid_invalid_and_duplicate_items_are_answered_in_order_each_as_post_jobs_would(api, stack):
    # Given a job made earlier by POST /v1/jobs with an Idempotency-Key
    earlier = api.post("/v1/jobs", email_job(), headers={"idempotency-key": "welcome-ann"}).json()
    invalid = [
        {"type": "no.such.type", "payload": {}},
        email_job(payload={"template": "welcome"}),  # no recipient
        email_job(run_at="2030-01-01T00:00:00Z", delay_seconds=60),
        email_job(max_attempts=0),
    ]
    items = [email_job(), invalid[0], email_job(idempotency_key="welcome-ann"), *invalid[1:], email_job()]

    # When a batch mixes new, invalid and repeated jobs
    response = api.post(BATCH, {"items": items})

    # Then one bad item fails only itself, and each result is in the request's order
    assert response.status == 200, response.body[:500]
    results = response.json()["items"]
    statuses = [r["status"] for r in results]
    assert statuses == ["created", "invalid", "duplicate", "invalid", "invalid", "invalid", "created"]
    assert results[2]["job"]["id"] == earlier["id"] and results[2]["status_code"] == 200
    # And each invalid item's error is exactly what POST /v1/jobs answers for it alone
    for result, item in zip([results[1], *results[3:6]], invalid, strict=True):
        alone = api.post("/v1/jobs", item)
        assert (result["status_code"], {"error": result["error"]}) == (alone.status, alone.json()), item
    # And only the valid new ones were stored (besides the earlier one)
    assert len(_all_jobs(api)) == 3


def test_a_reused_key_with_another_job_is_a_conflict_naming_the_first(api):
    # Given a batch item that made a job with a key
    first = api.post(BATCH, {"items": [email_job(idempotency_key="k1")]}).json()["items"][0]
    assert first["status"] == "created"

    # When another batch uses that key with a different job (and a single POST with that key and job)
    again = api.post(BATCH, {"items": [email_job(max_attempts=1, idempotency_key="k1"), email_job()]})
    single = api.post("/v1/jobs", email_job(), headers={"idempotency-key": "k1"})

    # Then that item is a conflict with the reason and the first job's id, the other item is created, and the
    # key still names the first job for a single POST too (keys are shared by both routes)
    conflict, created = again.json()["items"]
    assert conflict["status"] == "conflict" and conflict["status_code"] == 409
    assert "different request" in conflict["error"]["message"]
    assert conflict["error"]["details"] == {"job_id": first["job"]["id"]}
    assert created["status"] == "created"
    assert (single.status, single.json()["id"]) == (200, first["job"]["id"])


def test_the_same_key_twice_in_one_batch_makes_one_job(api):
    results = api.post(BATCH, {"items": [email_job(idempotency_key="k"), email_job(idempotency_key="k")]})
    first, second = results.json()["items"]
    assert (first["status"], second["status"]) == ("created", "duplicate")
    assert first["job"]["id"] == second["job"]["id"]
    assert len(_all_jobs(api)) == 1


def test_an_item_whose_type_needs_another_scope_is_refused_alone(api_as, stack, sent_emails):
    # Given a key that may enqueue jobs but not message a tenant's contacts
    jobs_only = api_as("tenant-a", "jobs:read,jobs:write")

    # When its batch holds a notification.send job beside an email job
    response = jobs_only.post(BATCH, {"items": [NOTIFY, email_job()]})

    # Then the notification is refused as POST /v1/jobs refuses it, and the email is created and sent
    refused, created = response.json()["items"]
    alone = jobs_only.post("/v1/jobs", NOTIFY)
    assert (refused["status"], refused["status_code"]) == ("invalid", 403)
    assert {"error": refused["error"]} == alone.json()
    assert refused["error"]["details"] == {"required_scope": "reminders:write"}
    assert created["status"] == "created"
    stack.drain()
    assert [m.destinations["ToAddresses"] for m in sent_emails()] == [["ann@example.com"]]


def test_the_batch_needs_jobs_write(api_as):
    response = api_as("tenant-a", "jobs:read").post(BATCH, {"items": [email_job()]})
    assert response.status == 403 and response.json()["error"]["details"] == {"required_scope": "jobs:write"}


def test_another_tenants_key_never_sees_nor_dedupes_against_this_tenants_job(api_as):
    # Given tenant A's job made with key "shared"
    a, b = api_as("tenant-a"), api_as("tenant-b")
    a_job = a.post(BATCH, {"items": [email_job(idempotency_key="shared")]}).json()["items"][0]["job"]

    # When tenant B sends a batch with the same key, the same job, and another job under that key
    b_results = b.post(BATCH, {"items": [email_job(idempotency_key="shared")]}).json()["items"]
    b_other = b.post(BATCH, {"items": [email_job(max_attempts=1, idempotency_key="shared")]}).json()["items"]

    # Then B gets its own new job (never A's, never a conflict with A's), and B's key dedupes only B's jobs
    assert b_results[0]["status"] == "created" and b_results[0]["job"]["id"] != a_job["id"]
    assert b_other[0]["status"] == "conflict"
    assert b_other[0]["error"]["details"] == {"job_id": b_results[0]["job"]["id"]}
    assert b.get(f"/v1/jobs/{a_job['id']}").status == 404
    assert [j["id"] for j in _all_jobs(a)] == [a_job["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"items": [email_job()] * 101},
        {"items": []},
        {"items": email_job()},
        {"items": ["email.send"]},
        {},
    ],
    ids=["101 items", "no items", "not a list", "an item not an object", "no items field"],
)
def test_a_malformed_batch_is_a_422_and_stores_nothing(api, body):
    response = api.post(BATCH, body)
    assert response.status == 422, response.body[:300]
    assert response.json()["error"]["code"] == "validation_error"
    assert _all_jobs(api) == []


def test_a_batch_body_over_the_limit_is_a_413(api):
    big = email_job(payload={"to": ["ann@example.com"], "template": "welcome", "context": {"x": "y" * 3000}})
    response = api.post(BATCH, {"items": [big] * 90})
    assert response.status == 413
    assert _all_jobs(api) == []


def test_racing_batches_with_the_same_keys_make_one_job_per_key(stack, atomic_dynamodb, monkeypatch):
    # Given two batches of ten keyed jobs sharing five keys (k5..k9), whose requests both find every key free
    # before either stores its jobs (each DynamoDB request atomic, as DynamoDB applies it)
    caller = Principal("tenant-a", frozenset({"jobs:write"}), "key-1")

    def batch(keys: range) -> list[tuple[NewJob, str]]:
        return [(NewJob("email.send", {"to": [f"u{i}@example.com"], "template": "welcome"}), f"k{i}") for i in keys]

    both_checked = threading.Barrier(2)
    insert_claimed = repository.insert_claimed

    def after_both_checked(*args: Any, **kwargs: Any) -> set[str]:
        both_checked.wait(timeout=60)
        return insert_claimed(*args, **kwargs)

    monkeypatch.setattr(repository, "insert_claimed", after_both_checked)
    outcomes: dict[str, list[Any]] = {}

    def send(name: str, keys: range) -> None:
        outcomes[name] = service.enqueue_many("tenant-a", batch(keys), caller=caller)

    # When both are enqueued at once, on two threads
    threads = [threading.Thread(target=send, args=args) for args in (("a", range(10)), ("b", range(5, 15)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then each shared key made exactly one job: one batch created it, the other was answered with that job; the
    # keys only one batch had were created by it
    a, b = outcomes["a"], outcomes["b"]
    for first, second in zip(a[5:], b[:5], strict=True):
        assert sorted([first.created, second.created]) == [False, True]
        assert first.job.id == second.job.id
    assert all(o.created for o in a[:5] + b[5:])
    stored, _ = service.list_jobs("tenant-a", state=None, job_type=None, limit=100, cursor=None)
    assert len(stored) == 15


def test_jobs_dynamodb_leaves_unprocessed_are_sent_again_and_the_rest_answered_unavailable(api, monkeypatch):
    from pynamodb.connection.base import Connection

    # Given DynamoDB leaving one job of each BatchWriteItem unprocessed twice, and one job for good
    real = Connection.batch_write_item
    refusals: dict[str, int] = {}
    waits: list[int] = []
    monkeypatch.setattr(repository, "_backoff", waits.append)

    def throttled(self: Any, table_name: str, put_items: Any = None, **kwargs: Any) -> Any:
        items = list(put_items or [])
        left = []
        for item in items:
            to = item["payload"]["S"]
            limit = 99 if "user7@" in to else 2
            if ("user3@" in to or "user7@" in to) and refusals.get(to, 0) < limit:
                refusals[to] = refusals.get(to, 0) + 1
                left.append(item)
        answer = (
            real(self, table_name, put_items=[i for i in items if i not in left], **kwargs)
            if len(left) < len(items)
            else {}
        )
        return (
            answer | {"UnprocessedItems": {table_name: [{"PutRequest": {"Item": i}} for i in left]}} if left else answer
        )

    monkeypatch.setattr(Connection, "batch_write_item", throttled)

    # When a batch of ten is sent
    results = api.post(BATCH, {"items": _emails(10)}).json()["items"]

    # Then the job refused twice was written on the third try (after backing off), the one refused every time is
    # answered `unavailable` (not stored: it may be sent again), and the others are created
    statuses = [r["status"] for r in results]
    assert statuses == ["created"] * 7 + ["unavailable"] + ["created"] * 2
    assert results[7]["status_code"] == 503 and results[7]["error"]["code"] == "unavailable"
    assert waits == [1, 2, 3, 4, 5]
    stored = {j["payload"]["to"][0] for j in _all_jobs(api)}
    assert len(stored) == 9 and "user7@example.com" not in stored and "user3@example.com" in stored
