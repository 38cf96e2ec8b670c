"""The `reminders.campaign` process: every matching contact notified once, in batches of 100, counted exactly."""

from __future__ import annotations

from typing import Any


def test_a_campaign_notifies_every_matching_contact_once_and_counts_each_outcome(
    api_as, contact, stack, sent_emails, monkeypatch
):
    from conveyor.reminders import campaign

    monkeypatch.setattr(campaign, "PAGE", 5)  # pages (and batches) of 5 instead of 100: the same code, fewer contacts
    for n in range(13):  # three pages of matches: 5 + 5 + 3 (plus the two below)
        contact(f"c{n:03}", name=f"Client {n}", channels=["in_app"])
    contact("x-email", channels=["email"])  # filtered out: no in_app
    contact("x-out", channels=["in_app"], opted_out=["in_app"])  # matches, but opted out of everything
    api = api_as("tenant-a", "processes:read,processes:write")

    started = api.post(
        "/v1/processes",
        {
            "type": "reminders.campaign",
            "name": "Closed on Friday",
            "params": {"filter": {"channel": "in_app"}, "subject": "Closed Friday", "text": "See you Monday"},
        },
    )
    assert started.status == 202, started.body
    process_id = started.json()["id"]
    stack.drain(max_rounds=200)

    done = api.get(f"/v1/processes/{process_id}").json()
    assert done["state"] == "completed", done
    assert done["counts"] == {"processed": 14, "succeeded": 13, "failed": 0, "skipped": 1}
    assert done["batches"] == {"total": 3, "done": 3, "fetch_done": True}  # pages of 5 contacts, 15 in all
    assert done["expected_total"] == 14 and done["progress"]["percent"] == 100.0
    feed = api_as("tenant-a", "reminders:read").get("/v1/contacts/c007/notifications").json()
    assert [item["title"] for item in feed["items"]] == ["Closed Friday"]
    assert feed["items"][0]["source"]["process_id"] == process_id
    assert sent_emails() == []  # the email-only contact did not match


def test_a_campaign_short_of_time_continues_through_checkpoints_and_counts_exactly_once(
    api_as, contact, stack, monkeypatch
):
    # Given a campaign whose every run is short of time (each does one page or one contact, then continues)
    from conveyor.reminders import campaign

    monkeypatch.setattr(campaign, "PAGE", 5)
    monkeypatch.setattr(campaign, "CONTINUE_BELOW_SECONDS", 10_000.0)
    for n in range(12):
        contact(f"c{n:03}", channels=["in_app"])
    contact("x-out", channels=["in_app"], opted_out=["in_app"])
    api = api_as("tenant-a", "processes:read,processes:write")
    body = {"type": "reminders.campaign", "params": {"filter": {"channel": "in_app"}, "subject": "Hi", "text": "x"}}

    # When it runs to the end
    process_id = api.post("/v1/processes", body).json()["id"]
    stack.drain(max_rounds=400)

    # Then the driver and every batch continued from their checkpoints, and each contact counted once
    done = api.get(f"/v1/processes/{process_id}").json()
    assert done["state"] == "completed", done
    assert done["counts"] == {"processed": 13, "succeeded": 12, "failed": 0, "skipped": 1}
    assert done["batches"] == {"total": 3, "done": 3, "fetch_done": True}
    jobs = api_as("tenant-a", "processes:read,jobs:read").get("/v1/jobs?type=reminders.campaign.send&limit=10")
    assert [job["state"] for job in jobs.json()["items"]] == ["completed"] * 3
    reader = api_as("tenant-a", "processes:read,jobs:read")

    def continues(job_id: str) -> int:
        timeline = reader.get(f"/v1/jobs/{job_id}").json()["timeline"]
        return sum("continues from a checkpoint" in (event.get("note") or "") for event in timeline)

    assert sorted(continues(job["id"]) for job in jobs.json()["items"]) == [2, 4, 4]  # batches of 3, 5 and 5
    feed = api_as("tenant-a", "reminders:read").get("/v1/contacts/c011/notifications").json()
    assert len(feed["items"]) == 1  # notified once, whatever the number of runs


def test_a_campaign_batch_run_twice_notifies_no_one_twice(api_as, contact, stack, monkeypatch):
    for n in range(3):
        contact(f"c{n}", channels=["in_app"])
    api = api_as("tenant-a", "processes:read,processes:write")
    from conveyor.reminders import campaign

    sends: list[str] = []
    original = campaign._notify

    def counted(ctx: Any, params: Any, contact_id: str, *rest: Any) -> str | None:
        result = original(ctx, params, contact_id, *rest)
        if result is None:
            sends.append(contact_id)
        return result

    monkeypatch.setattr(campaign, "_notify", counted)
    body = {"type": "reminders.campaign", "params": {"subject": "Hi", "text": "Hello"}}
    process_id = api.post("/v1/processes", body).json()["id"]
    stack.drain()
    # the batch's job re-runs (a redelivery after a lost acknowledgement): same contacts, same process
    from conveyor.processes import repository

    process = repository.get("tenant-a", process_id, consistent=True)
    [(_, _, payload, _)] = list(repository.declared_batches(process))
    feed_before = api_as("tenant-a", "reminders:read").get("/v1/contacts/c1/notifications").json()["items"]

    from conveyor.jobs.registry import JobContext, JobRef
    from conveyor.processes.jobs import ProcessHandle

    ref = JobRef("tenant-a", "job_again", "reminders.campaign.send", "notifications", payload, process_id, "p0.0")
    ctx = JobContext(
        "job_again", "tenant-a", "reminders.campaign.send", 1, lambda _: True, 5, process=ProcessHandle(ref, process)
    )
    campaign.send(campaign.SendPayload.model_validate(payload), ctx)

    feed_after = api_as("tenant-a", "reminders:read").get("/v1/contacts/c1/notifications").json()["items"]
    assert len(feed_before) == len(feed_after) == 1
    assert api.get(f"/v1/processes/{process_id}").json()["counts"]["processed"] == 3  # counted once


def test_a_message_without_content_is_refused_alike_as_a_notification_and_as_a_campaign(api_as, contact):
    # A template, or a subject and a text: a subject alone is nothing to send, wherever it comes from
    contact("c1", channels=["in_app"])
    notification = api_as("tenant-a", "reminders:write").post(
        "/v1/notifications", {"contact_id": "c1", "subject": "Hi"}
    )
    campaign = api_as("tenant-a", "processes:write").post(
        "/v1/processes", {"type": "reminders.campaign", "name": "Hi", "params": {"subject": "Hi"}}
    )

    for refused in (notification, campaign):
        assert refused.status == 422, refused.body
        assert "give a template, or a subject and a text" in refused.body.decode()
