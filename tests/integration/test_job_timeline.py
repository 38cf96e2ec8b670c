"""A job's timeline stays bounded however often it is retried: its first and last entries, and a count."""

from __future__ import annotations

from factories import email_job


def test_a_job_retried_many_times_keeps_its_first_and_last_timeline_entries_and_counts_the_rest(
    api, stack, monkeypatch
):
    from conveyor.jobs import domain

    TIMELINE_KEEP = 4  # noqa: N806 - the engine's bound (20), made small so a few cycles pass it
    monkeypatch.setattr(domain, "TIMELINE_KEEP", TIMELINE_KEEP)
    # Given an email job that fails permanently every time (SES refuses the sender)
    stack.client("sesv2").delete_email_identity(EmailIdentity=stack.template.parameters["EmailFrom"])
    job_id = api.post("/v1/jobs", email_job()).json()["id"]
    stack.drain()

    # When it is retried by request, and fails again, 6 times over
    cycles = 6
    for _ in range(cycles):
        assert api.post(f"/v1/jobs/{job_id}/retry").status == 200
        stack.drain()

    # Then its timeline holds the first and the last TIMELINE_KEEP entries, and counts the ones between them
    job = api.get(f"/v1/jobs/{job_id}").json()
    total = 3 + 3 * cycles  # queued, active, failed; then queued (retried), active, failed per cycle
    assert job["state"] == "failed"
    assert len(job["timeline"]) == 2 * TIMELINE_KEEP
    assert job["timeline_dropped"] == total - 2 * TIMELINE_KEEP
    assert [e["state"] for e in job["timeline"][:3]] == ["queued", "active", "failed"]
    assert [e["state"] for e in job["timeline"][-3:]] == ["queued", "active", "failed"]
    assert job["timeline"][-3]["note"] == "retried by request"
    # And it can still be retried and run (no item near DynamoDB's 400 KB)
    assert api.post(f"/v1/jobs/{job_id}/retry").status == 200
