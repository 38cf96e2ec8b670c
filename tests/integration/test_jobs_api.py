"""The jobs HTTP API, through the emulated API Gateway (authorizer first) and the real API handler."""

from __future__ import annotations

import pytest
from factories import email_job
from pynamodb.pagination import PageIterator

from conveyor.platform import dynamo


def test_enqueued_email_is_sent_and_the_job_completes_with_the_ses_message_id(api, stack, sent_emails):
    # Given an email job accepted by the API
    accepted = api.post("/v1/jobs", email_job())
    assert accepted.status == 202
    job = accepted.json()
    assert job["state"] == "queued" and job["attempts"] == 0 and job["queue"] == "email"

    # When the dispatcher and the worker have run
    stack.drain()

    # Then the job is completed and its result holds the id SES gave the message
    done = api.get(f"/v1/jobs/{job['id']}").json()
    assert done["state"] == "completed"
    assert done["progress"] == 100 and done["attempts"] == 1
    [email] = sent_emails()
    assert done["result"] == {"message_id": email.id}
    assert email.destinations["ToAddresses"] == ["ann@example.com"]
    assert email.subject == "Welcome to our practice, Ann"
    assert [e["state"] for e in done["timeline"]] == ["queued", "active", "completed"]


def test_same_idempotency_key_returns_the_first_job_and_never_creates_a_second(api, stack, sent_emails):
    first = api.post("/v1/jobs", email_job(), headers={"Idempotency-Key": "order-42"})
    again = api.post("/v1/jobs", email_job(), headers={"Idempotency-Key": "order-42"})

    assert (first.status, again.status) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    stack.drain()
    assert len(sent_emails()) == 1
    assert len(api.get("/v1/jobs").json()["items"]) == 1


def test_reusing_an_idempotency_key_for_a_different_request_is_a_conflict(api):
    api.post("/v1/jobs", email_job(), headers={"Idempotency-Key": "k1"})

    other = api.post("/v1/jobs", email_job(delay_seconds=60), headers={"Idempotency-Key": "k1"})

    assert other.status == 409
    assert other.json()["error"]["code"] == "conflict"


def test_idempotency_keys_are_per_tenant(api_as):
    a, b = api_as("tenant-a"), api_as("tenant-b")

    job_a = a.post("/v1/jobs", email_job(), headers={"Idempotency-Key": "same"}).json()
    job_b = b.post("/v1/jobs", email_job(), headers={"Idempotency-Key": "same"})

    assert job_b.status == 202 and job_b.json()["id"] != job_a["id"]


def test_a_tenant_cannot_see_or_touch_another_tenants_jobs(api_as):
    owner, other = api_as("tenant-a"), api_as("tenant-b")
    job = owner.post("/v1/jobs", email_job()).json()

    assert other.get(f"/v1/jobs/{job['id']}").status == 404
    assert other.post(f"/v1/jobs/{job['id']}/cancel").status == 404
    assert other.post(f"/v1/jobs/{job['id']}/retry").status == 404
    assert other.get("/v1/jobs").json()["items"] == []
    assert owner.get(f"/v1/jobs/{job['id']}").json()["state"] == "queued"


def test_requests_without_a_key_are_401_from_the_gateway(api):
    response = api.get("/v1/jobs", key=None)
    assert response.status == 401


def test_unknown_malformed_and_revoked_keys_are_401_json(api, new_key):
    from conveyor.platform.auth import keys

    revoked = new_key()
    keys.revoke(revoked)
    expired = new_key(expires_in_days=-1)
    tampered = new_key()[:-4] + "aaaa"

    for key in ("cvk_" + "a" * 52, "not-a-key", revoked, expired, tampered):
        response = api.get("/v1/jobs", key=key)
        assert response.status == 401, key
        assert response.json()["error"]["code"] == "unauthorized"


def test_a_key_without_the_routes_scope_is_403(api_as):
    reader = api_as("tenant-a", "jobs:read")

    response = reader.post("/v1/jobs", email_job())

    assert response.status == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "this API key lacks the 'jobs:write' scope",
        "details": {"required_scope": "jobs:write"},
    }
    assert reader.get("/v1/jobs").status == 200


def test_admin_scope_implies_the_others(api_as):
    admin = api_as("tenant-a", "admin")
    assert admin.post("/v1/jobs", email_job()).status == 202


def test_invalid_payload_is_422_with_the_fields_named(api):
    response = api.post("/v1/jobs", {"type": "email.send", "payload": {"to": ["not-an-email"], "subject": "Hi"}})

    assert response.status == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    locs = [d["loc"] for d in error["details"]]
    assert ["body", "payload", "to", 0] in locs


def test_unknown_job_type_is_422_listing_the_known_ones(api):
    response = api.post("/v1/jobs", {"type": "fax.send", "payload": {}})

    assert response.status == 422
    assert "email.send" in response.json()["error"]["details"][0]["msg"]


def test_bad_request_fields_are_422(api):
    cases = [
        {"payload": {}},  # no type
        email_job(max_attempts=0),
        email_job(delay_seconds=-1),
        email_job(run_at="2030-01-01T00:00:00"),  # no time zone
        email_job(run_at="2030-01-01T00:00:00Z", delay_seconds=5),
        email_job(run_at="2099-01-01T00:00:00Z"),  # more than a year ahead
        email_job(unexpected=True),
        {"type": "email.send", "payload": {"to": ["a@example.com"], "template": "no-such-template"}},
        {"type": "email.send", "payload": {"to": ["a@example.com"]}},  # no content
        {
            "type": "email.send",
            "payload": {"to": [f"u{i}@example.com" for i in range(51)], "subject": "s", "text": "t"},
        },
    ]
    for body in cases:
        response = api.post("/v1/jobs", body)
        assert response.status == 422, body
        assert response.json()["error"]["code"] == "validation_error"


def test_malformed_json_is_400(api):
    response = api.post("/v1/jobs", raw=b'{"type": "email.send",')

    assert response.status == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_body_over_256_kb_is_413_and_nothing_is_stored(api):
    huge = email_job()
    huge["payload"]["context"] = {"blob": "x" * (256 * 1024)}

    response = api.post("/v1/jobs", huge)

    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert api.get("/v1/jobs").json()["items"] == []


def test_unknown_job_id_is_404_and_unknown_route_is_404(api):
    assert api.get("/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV").json()["error"]["code"] == "not_found"
    assert api.get("/v1/jobs/anything-else").status == 404
    assert api.get("/v1/nothing-here").status == 404


def test_list_is_newest_first_with_cursor_pagination_and_filters(api, stack):
    ids = [api.post("/v1/jobs", email_job()).json()["id"] for _ in range(5)]
    later = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()["id"]

    page1 = api.get("/v1/jobs?limit=4").json()
    page2 = api.get(f"/v1/jobs?limit=4&cursor={page1['next_cursor']}").json()

    assert [j["id"] for j in page1["items"] + page2["items"]] == [later, *reversed(ids)]
    assert page2["next_cursor"] is None
    assert [j["id"] for j in api.get("/v1/jobs?state=scheduled").json()["items"]] == [later]
    assert len(api.get("/v1/jobs?type=email.send&state=queued").json()["items"]) == 5
    assert api.get("/v1/jobs?type=other").json()["items"] == []
    assert api.get("/v1/jobs?state=bogus").status == 422
    assert api.get("/v1/jobs?cursor=garbage").status == 400
    assert api.get("/v1/jobs?limit=1000").status == 422


def test_a_filter_that_matches_few_jobs_reads_a_bounded_page_and_its_cursor_walks_on(api, monkeypatch):
    # Given one scheduled job under twelve newer queued ones, and listings that read at most 5 jobs a request
    scheduled = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()["id"]
    for _ in range(12):
        api.post("/v1/jobs", email_job())
    monkeypatch.setattr(dynamo, "MAX_EXAMINED", 5)

    # When the scheduled jobs are listed, page after page
    pages, cursor = [], ""
    while cursor is not None:
        page = api.get(f"/v1/jobs?state=scheduled&limit=10{cursor and f'&cursor={cursor}'}").json()
        pages.append([job["id"] for job in page["items"]])
        cursor = page["next_cursor"]

    # Then two requests read five queued jobs each and answered an empty page with a cursor; the third found it
    assert pages == [[], [], [scheduled]]
    # And an unfiltered listing still fills its page
    assert len(api.get("/v1/jobs?limit=4").json()["items"]) == 4


def test_a_filter_that_matched_nothing_on_its_first_page_reads_the_rest_of_its_budget_at_once(api, monkeypatch):
    # Given one scheduled job under 300 newer queued ones
    scheduled = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()["id"]
    for _ in range(3):
        assert api.post("/v1/jobs/batch", {"items": [email_job()] * 100}).status == 200
    reads: list[int | None] = []
    read = PageIterator.__next__
    monkeypatch.setattr(PageIterator, "__next__", lambda pages: reads.append(pages.page_size) or read(pages))

    # When the scheduled jobs are listed
    page = api.get("/v1/jobs?state=scheduled").json()

    # Then one request found it in two reads: a first page, then the rest of the 1,000-item budget, not 100 by 100
    assert [job["id"] for job in page["items"]] == [scheduled] and page["next_cursor"] is None
    assert reads == [100, 900]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "%C3%A9t%C3%A9", "%E2%98%83%3D%3D", "eyJzayI6InJlbSMxIn0", "bm90LWEtam9i", "W10", "!!!!"],
    ids=["garbage", "non-ascii", "snowman-padding", "another-lists-key", "not-a-job-id", "json-list", "punctuation"],
)
def test_a_cursor_the_list_did_not_hand_out_is_a_400_not_a_500(api, cursor):
    response = api.get(f"/v1/jobs?cursor={cursor}")
    assert (response.status, response.json()["error"]["code"]) == (400, "bad_request")


def test_cancel_a_queued_job_and_the_worker_never_runs_it(api, stack, sent_emails):
    job = api.post("/v1/jobs", email_job()).json()

    cancelled = api.post(f"/v1/jobs/{job['id']}/cancel")
    stack.drain()

    assert cancelled.status == 200 and cancelled.json()["state"] == "cancelled"
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
    assert sent_emails() == []


def test_cancel_of_a_finished_job_is_409_and_retry_of_a_live_job_is_409(api, stack):
    job = api.post("/v1/jobs", email_job()).json()
    assert api.post(f"/v1/jobs/{job['id']}/retry").status == 409  # queued
    stack.drain()

    response = api.post(f"/v1/jobs/{job['id']}/cancel")

    assert response.status == 409
    assert response.json()["error"]["details"] == {"state": "completed"}


def test_retry_of_a_cancelled_job_runs_it_with_fresh_attempts(api, stack, sent_emails):
    job = api.post("/v1/jobs", email_job()).json()
    api.post(f"/v1/jobs/{job['id']}/cancel")
    stack.drain()

    retried = api.post(f"/v1/jobs/{job['id']}/retry")
    stack.drain()

    assert retried.status == 200 and retried.json()["state"] == "queued"
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"
    assert len(sent_emails()) == 1


def test_openapi_31_document_and_swagger_ui_are_served_without_a_key(api):
    spec = api.get("/v1/openapi.json", key=None)
    docs = api.get("/v1/docs", key=None)
    health = api.get("/health", key=None)

    assert spec.status == 200
    document = spec.json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel"} <= set(document["paths"])
    assert "apiKey" in document["components"]["securitySchemes"]
    assert docs.status == 200 and b"swagger" in docs.body.lower()
    assert health.json() == {"status": "ok"}


def test_every_api_route_in_the_template_is_served_by_the_api(stack, new_key):
    """template.yaml and the resolver must not drift: each declared route reaches a real handler."""
    admin = new_key("tenant-a", "admin")
    for route in stack.gateway.routes:
        path = route.path.replace("{job_id}", "job_01ARZ3NDEKTSV4RRFFQ69G5FAV")
        response = stack.gateway.handle(route.method, path, {"authorization": f"Bearer {admin}"}, b"{}")
        # Every declared route reaches the resolver: never its "no such route" answer, never a crash.
        assert response.status < 500, route.key
        assert b"no such route" not in response.body, route.key
