"""Conditional GETs: a client polling a resource that did not change gets 304 Not Modified, never another tenant's."""

from __future__ import annotations

from factories import email_job


def test_polling_an_unchanged_job_answers_304_with_no_body(api) -> None:
    # Given a job, read once
    job = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()
    first = api.get(f"/v1/jobs/{job['id']}")
    tag = first.headers["etag"]

    # When the client revalidates with that ETag
    again = api.get(f"/v1/jobs/{job['id']}", headers={"if-none-match": tag})

    # Then 304, no body, the same validator; and tenant data must be revalidated, never shared
    assert (again.status, again.body, again.headers["etag"]) == (304, b"", tag)
    assert first.headers["cache-control"] == "private, no-cache"
    assert first.headers["vary"] == "Authorization"


def test_after_a_change_the_same_etag_gets_the_new_representation(api) -> None:
    job = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()
    tag = api.get(f"/v1/jobs/{job['id']}").headers["etag"]

    assert api.post(f"/v1/jobs/{job['id']}/cancel").status == 200
    changed = api.get(f"/v1/jobs/{job['id']}", headers={"if-none-match": tag})

    assert changed.status == 200
    assert changed.json()["state"] == "cancelled"
    assert changed.headers["etag"] != tag


def test_lists_are_conditional_too_and_a_list_of_several_tags_or_a_star_matches(api) -> None:
    api.post("/v1/jobs", email_job(delay_seconds=3600))
    tag = api.get("/v1/jobs").headers["etag"]

    assert api.get("/v1/jobs", headers={"if-none-match": f'"other", W/{tag}'}).status == 304
    assert api.get("/v1/jobs", headers={"if-none-match": "*"}).status == 304
    assert api.get("/v1/jobs", headers={"if-none-match": '"stale"'}).status == 200


def test_two_tenants_with_identical_bodies_never_share_an_etag(api_as) -> None:
    # Given two tenants whose job lists are both empty (the same body)
    a, b = api_as("tenant-a"), api_as("tenant-b")
    seen_by_a = a.get("/v1/jobs")
    seen_by_b = b.get("/v1/jobs")
    assert seen_by_a.body == seen_by_b.body

    # Then their tags differ, and one tenant's tag never validates the other's copy
    assert seen_by_a.headers["etag"] != seen_by_b.headers["etag"]
    assert b.get("/v1/jobs", headers={"if-none-match": seen_by_a.headers["etag"]}).status == 200


def test_writes_and_errors_carry_no_validators(api) -> None:
    created = api.post("/v1/jobs", email_job())
    missing = api.get("/v1/jobs/job_01ARZ3NDEKTSV4RRFFQ69G5FAV")

    assert created.status == 202 and "etag" not in created.headers
    assert missing.status == 404 and "etag" not in missing.headers


def test_health_answers_are_never_stored(api) -> None:
    assert api.get("/health", key=None).headers["cache-control"] == "no-store"
