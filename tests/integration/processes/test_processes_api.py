"""The /v1/processes API: ETag and 304, scopes, tenants, idempotency, listing, illegal transitions."""

from __future__ import annotations


def test_polling_an_unchanged_process_gets_304_not_modified(processes_api, stack):
    process = processes_api.post("/v1/processes", {"type": "test.fanout", "params": {"batches": 2}}).json()
    first = processes_api.get(f"/v1/processes/{process['id']}")
    etag = first.headers["etag"]

    again = processes_api.get(f"/v1/processes/{process['id']}", headers={"if-none-match": etag})
    assert again.status == 304 and again.body in (b"", b"null")

    stack.drain()
    changed = processes_api.get(f"/v1/processes/{process['id']}", headers={"if-none-match": etag})
    assert changed.status == 200 and changed.headers["etag"] != etag
    assert changed.json()["state"] == "completed"
    done_etag = changed.headers["etag"]
    assert processes_api.get(f"/v1/processes/{process['id']}", headers={"if-none-match": done_etag}).status == 304


def test_processes_need_their_scopes_and_stay_within_the_tenant(processes_api, api_as, stack):
    process = processes_api.post("/v1/processes", {"type": "test.fanout", "params": {}}).json()

    jobs_only = api_as("tenant-a", "jobs:read,jobs:write")
    other_tenant = api_as("tenant-b", "processes:read,processes:write")
    admin = api_as("tenant-a", "admin")

    assert jobs_only.get(f"/v1/processes/{process['id']}").status == 403
    assert jobs_only.post("/v1/processes", {"type": "test.fanout"}).status == 403
    assert other_tenant.get(f"/v1/processes/{process['id']}").status == 404
    assert other_tenant.post(f"/v1/processes/{process['id']}/cancel").status == 404
    assert other_tenant.get("/v1/processes").json()["items"] == []
    assert admin.get(f"/v1/processes/{process['id']}").status == 200


def test_an_idempotency_key_returns_the_same_process(processes_api, stack):
    body = {"type": "test.fanout", "params": {"batches": 1}}
    first = processes_api.post("/v1/processes", body, headers={"idempotency-key": "k1"})
    again = processes_api.post("/v1/processes", body, headers={"idempotency-key": "k1"})
    other = processes_api.post("/v1/processes", {**body, "name": "x"}, headers={"idempotency-key": "k1"})

    assert (first.status, again.status) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert other.status == 409


def test_bad_starts_are_4xx_and_lists_filter_and_page(processes_api, stack):
    assert processes_api.post("/v1/processes", {"type": "nope"}).status == 422
    assert processes_api.post("/v1/processes", {"type": "test.fanout", "params": {"batches": -1}}).status == 422
    ids = [processes_api.post("/v1/processes", {"type": "test.fanout", "params": {}}).json()["id"] for _ in range(3)]

    page = processes_api.get("/v1/processes?limit=2").json()
    rest = processes_api.get(f"/v1/processes?limit=2&cursor={page['next_cursor']}").json()
    pending = processes_api.get("/v1/processes?state=pending").json()["items"]

    assert [p["id"] for p in page["items"] + rest["items"]] == ids[::-1]
    assert {p["id"] for p in pending} == set(ids)
    assert processes_api.get("/v1/processes?cursor=bogus").status == 400
    for percent in (True, "5"):  # a number, as documented: never a boolean or a string read as one
        body = {"type": "test.fanout", "params": {}, "tolerated_failure_percent": percent}
        assert processes_api.post("/v1/processes", body).status == 422
    assert processes_api.get("/v1/processes/prc_nothing").status == 404


def test_an_illegal_transition_is_a_409_naming_the_state(processes_api, stack):
    process = processes_api.post("/v1/processes", {"type": "test.fanout", "params": {}}).json()

    resumed = processes_api.post(f"/v1/processes/{process['id']}/resume")  # pending, not paused
    paused = processes_api.post(f"/v1/processes/{process['id']}/pause")  # not running yet

    assert resumed.status == 409 and resumed.json()["error"]["details"] == {"state": "pending"}
    assert paused.status == 409
    assert processes_api.post(f"/v1/processes/{process['id']}/cancel").json()["state"] == "cancelled"
    assert processes_api.post(f"/v1/processes/{process['id']}/cancel").status == 409
