"""A failing endpoint: the circuit breaker defers deliveries without spending attempts; five days of failures
bring warnings (through notify), then the subscription is disabled and events are kept as skipped; recover
delivers them once each, in order of occurrence."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import time_machine
from support import deliveries, delivery, subscribe, touch_contact
from werkzeug import Request, Response

START = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


class Receiver:
    """An endpoint that fails until told to work; it records the envelopes it accepted."""

    def __init__(self) -> None:
        self.healthy = False
        self.failures = 0
        self.accepted: list[dict] = []

    def __call__(self, request: Request) -> Response:
        if not self.healthy:
            self.failures += 1
            return Response("down", status=500)
        self.accepted.append(json.loads(request.get_data()))
        return Response("ok", status=200)


def test_the_breaker_defers_deliveries_without_spending_attempts_until_a_probe_succeeds(api, stack, httpserver):
    receiver = Receiver()
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    sub = subscribe(api, httpserver.url_for("/hook"))
    with time_machine.travel(START, tick=False) as clock:
        for n in range(12):
            touch_contact(api, f"c-{n}", f"Contact {n}")
        stack.drain()

        assert receiver.failures == 10  # the breaker opened after ten consecutive failures
        health = api.get(f"/v1/webhooks/{sub['id']}").json()["health"]
        assert health["breaker"] == "open" and health["consecutive_failures"] == 10
        waiting = [d for d in deliveries(api, sub["id"]) if d["attempt_count"] == 0]
        assert len(waiting) == 2 and all(d["status"] == "pending" for d in waiting)
        assert all(d["next_attempt_at"] >= health["breaker_open_until"] for d in waiting)

        receiver.healthy = True
        clock.move_to(START + timedelta(minutes=20))
        stack.fire_schedules(datetime.now(UTC))
        stack.drain()

    assert api.get(f"/v1/webhooks/{sub['id']}").json()["health"]["breaker"] == "closed"
    assert {d["status"] for d in deliveries(api, sub["id"])} == {"delivered"}
    assert Counter(e["id"] for e in receiver.accepted) == Counter(
        {d["event_id"]: 1 for d in deliveries(api, sub["id"])}
    )
    for item in waiting:
        assert len(delivery(api, sub["id"], item["id"])["attempts"]) == 1  # deferral spent none


def _feed(api, contact_id: str) -> list[str]:
    return [item["title"] for item in api.get(f"/v1/contacts/{contact_id}/notifications?limit=100").json()["items"]]


def test_five_days_of_failures_warn_then_disable_and_recover_delivers_the_outage_once_in_order(api, stack, httpserver):
    receiver = Receiver()
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    with time_machine.travel(START, tick=False) as clock:
        api.request("PUT", "/v1/contacts/ops", {"name": "Ops", "timezone": "UTC", "channels": ["in_app"]})
        stack.drain()  # its contact.created is consumed before anyone subscribes
        sub = subscribe(api, httpserver.url_for("/hook"), ["contact.*"], alert_contact_id="ops")
        hours = [0, 12, 24, 36, 60, 84, 96, 108, 120, 132, 144]
        for step, hour in enumerate(hours):
            clock.move_to(START + timedelta(hours=hour, minutes=1))
            touch_contact(api, "c-1", f"version {step}")
            stack.drain()

        # Then: warned after a day and after four, disabled after five (through notify's in-app feed)
        state = api.get(f"/v1/webhooks/{sub['id']}").json()
        assert state["enabled"] is False and "5 days" in state["disabled_reason"]
        titles = _feed(api, "ops")
        assert titles.count("Webhook endpoint is failing") == 2
        assert titles.count("Webhook endpoint was disabled") == 1
        skipped = deliveries(api, sub["id"], status="skipped")
        assert skipped  # events during the outage were kept
        sent_before = receiver.failures

        # When the endpoint works again and the tenant recovers since the start
        receiver.healthy = True
        clock.move_to(START + timedelta(hours=150))
        recovered = api.post(f"/v1/webhooks/{sub['id']}/recover", {"since": START.isoformat()})
        assert recovered.status == 202 and recovered.json()["enabled"] is True
        stack.drain()
        by_recover = [e["data"]["name"] for e in receiver.accepted]
        # ...and the rest of the pending retries come due
        for day in range(1, 5):
            clock.move_to(START + timedelta(hours=150) + timedelta(days=day))
            stack.fire_schedules(datetime.now(UTC))
            stack.drain()

    assert receiver.failures == sent_before  # nothing was sent while disabled
    names = [f"version {n}" for n in range(len(hours))]
    assert by_recover == sorted(by_recover, key=names.index) and len(by_recover) >= len(skipped)
    every = deliveries(api, sub["id"])
    assert len(every) == len(hours), [d["event_type"] for d in every]
    assert {d["status"] for d in every} == {"delivered"}, [
        (d["status"], d["attempt_count"], d["next_attempt_at"], delivery(api, sub["id"], d["id"])["attempts"][-1:])
        for d in every
        if d["status"] != "delivered"
    ]
    assert Counter(e["id"] for e in receiver.accepted) == Counter({d["event_id"]: 1 for d in every})
