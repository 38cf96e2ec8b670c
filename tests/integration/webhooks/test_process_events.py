"""Processes publish in the webhooks' event model: a campaign's start and end reach a `process.*` subscriber
through the processes table's stream, signed, once each; its batches' counting sends nothing."""

from __future__ import annotations

from support import WEBHOOK_SCOPES, received, subscribe, touch_contact, verified


def test_a_process_that_runs_to_the_end_announces_its_start_and_its_completion_once(api_as, stack, httpserver):
    # Given a subscriber to process.* and two contacts
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    api = api_as("tenant-a", WEBHOOK_SCOPES + ",processes:read,processes:write")
    touch_contact(api, "c-1", "Ann")
    touch_contact(api, "c-2", "Bob")
    stack.drain()
    sub = subscribe(api, httpserver.url_for("/hook"), ["process.*"])

    # When a campaign to both runs to completion
    body = {"type": "reminders.campaign", "name": "hello", "params": {"subject": "Hi", "text": "Hello"}}
    started = api.post("/v1/processes", body)
    assert started.status == 202, started.body
    stack.drain()

    # Then the subscriber heard exactly process.started and process.completed, with the final counts
    envelopes = [verified(sub["secret"], headers, raw) for headers, raw in received(httpserver)]
    assert [e["type"] for e in envelopes] == ["process.started", "process.completed"]
    done = envelopes[1]["data"]
    assert done["process_id"] == started.json()["id"] and done["process_type"] == "reminders.campaign"
    assert (done["state"], done["processed"], done["succeeded"]) == ("completed", 2, 2)
    assert api.get(f"/v1/processes/{done['process_id']}").json()["state"] == "completed"
