"""Delivery: signed (verified with `standardwebhooks`), rotation grace, the retry schedule under frozen time,
Retry-After, 410, redirects, network errors, test sends and resends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks.webhooks import WebhookVerificationError
from support import bodies, deliveries, delivery, received, subscribe, touch_contact, verified
from werkzeug import Response

from conveyor.platform import outbound
from conveyor.webhooks.domain import RETRY_SCHEDULE_SECONDS

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_delivery_is_signed_standard_webhooks_v1_and_verifies_with_the_library(api, stack, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))

    touch_contact(api, "c-1", "Ann")
    stack.drain()

    [(headers, body)] = received(httpserver)
    envelope = verified(sub["secret"], headers, body)
    assert envelope["type"] == "contact.created" and envelope["tenant_id"] == "tenant-a"
    assert envelope["data"]["contact_id"] == "c-1" and envelope["data"]["name"] == "Ann"
    assert headers["webhook-id"] == envelope["id"] and envelope["id"].startswith("evt_")
    assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    [logged] = deliveries(api, sub["id"])
    assert logged["status"] == "delivered" and logged["event_id"] == envelope["id"]
    [attempt] = delivery(api, sub["id"], logged["id"])["attempts"]
    assert attempt["status_code"] == 200 and attempt["trigger"] == "scheduled" and attempt["response_excerpt"] == "ok"


def test_during_a_rotations_grace_both_secrets_verify_and_after_it_only_the_new_one(api, stack, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    with time_machine.travel(START, tick=False) as clock:
        new = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret", {"grace_seconds": 3600}).json()["secret"]
        touch_contact(api, "c-1", "Ann")
        stack.drain()
        [(during_h, during)] = received(httpserver)
        assert len(during_h["webhook-signature"].split(" ")) == 2
        verified(new, during_h, during)
        verified(sub["secret"], during_h, during)

        clock.move_to(START + timedelta(hours=1, seconds=1))
        touch_contact(api, "c-1", "Ann B")
        stack.drain()
        _, (after_h, after) = received(httpserver)
        assert len(after_h["webhook-signature"].split(" ")) == 1
        assert verified(new, after_h, after)["type"] == "contact.updated"
        with pytest.raises(WebhookVerificationError):
            verified(sub["secret"], after_h, after)


def _run_due_attempts(stack, api, sub_id: str, clock, limit: int = 12) -> dict:
    """Let time pass to each next attempt (frozen clock): releases delayed jobs, delivers what is due."""
    for _ in range(limit):
        [item] = deliveries(api, sub_id)
        if item["status"] != "pending":
            return delivery(api, sub_id, item["id"])
        clock.move_to(_at(item["next_attempt_at"]) + timedelta(seconds=1))
        stack.fire_schedules(datetime.now(UTC))
        stack.drain()
    [item] = deliveries(api, sub_id)
    return delivery(api, sub_id, item["id"])


def test_attempts_against_a_failing_receiver_come_at_the_schedules_offsets(api, stack, httpserver):
    httpserver.expect_request("/hook").respond_with_data("down", status=500)
    sub = subscribe(api, httpserver.url_for("/hook"))
    with time_machine.travel(START, tick=False) as clock:
        touch_contact(api)
        stack.drain()
        final = _run_due_attempts(stack, api, sub["id"], clock)

    attempts = final["attempts"]
    assert final["status"] == "failed" and len(attempts) == len(RETRY_SCHEDULE_SECONDS) + 1
    assert len(received(httpserver)) == len(attempts)
    for step, before, after in zip(RETRY_SCHEDULE_SECONDS, attempts[:-1], attempts[1:], strict=True):
        waited = (_at(after["at"]) - _at(before["at"])).total_seconds()
        assert step <= waited <= step * 1.1 + 1.5, (step, waited)  # + the 1 s the test lets pass
        assert before["status_code"] == 500 and before["error"] == "http"
    assert attempts[-1]["next_attempt_at"] is None
    assert (_at(attempts[-1]["at"]) - _at(attempts[0]["at"])) > timedelta(days=3)


def test_retry_after_delays_the_next_attempt_at_least_that_long(api, stack, httpserver):
    httpserver.expect_ordered_request("/hook").respond_with_response(
        Response("busy", status=503, headers={"Retry-After": "120"})
    )
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    with time_machine.travel(START, tick=False) as clock:
        touch_contact(api)
        stack.drain()
        [item] = deliveries(api, sub["id"])
        first = delivery(api, sub["id"], item["id"])["attempts"][0]
        assert first["status_code"] == 503
        assert (_at(first["next_attempt_at"]) - _at(first["at"])).total_seconds() >= 120
        clock.move_to(START + timedelta(seconds=60))
        stack.drain()
        assert len(received(httpserver)) == 1  # not before 120 s
        final = _run_due_attempts(stack, api, sub["id"], clock)
    assert final["status"] == "delivered" and [a["status_code"] for a in final["attempts"]] == [503, 200]


def test_410_gone_disables_the_subscription_at_once_and_announces_it(api, stack, httpserver):
    httpserver.expect_request("/gone").respond_with_data("gone", status=410)
    httpserver.expect_request("/ops").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/gone"))
    ops = subscribe(api, httpserver.url_for("/ops"), ["webhook.*"])

    touch_contact(api)
    stack.drain()

    assert api.get(f"/v1/webhooks/{sub['id']}").json()["enabled"] is False
    [item] = deliveries(api, sub["id"])
    assert item["status"] == "failed" and item["attempt_count"] == 1
    [(headers, body)] = received(httpserver, "/ops")
    announced = verified(ops["secret"], headers, body)
    assert announced["type"] == "webhook.endpoint.disabled"
    assert announced["data"]["subscription_id"] == sub["id"] and "410" in announced["data"]["reason"]

    touch_contact(api, name="Later")
    stack.drain()
    assert len(received(httpserver, "/gone")) == 1  # nothing more was sent to it...
    assert [d["status"] for d in deliveries(api, sub["id"])] == ["skipped", "failed"]  # ...but it was kept


def test_a_redirect_to_loopback_is_not_followed_and_counts_as_a_failure(api, stack, httpserver):
    httpserver.expect_request("/hook").respond_with_response(
        Response(status=302, headers={"Location": httpserver.url_for("/internal")})
    )
    httpserver.expect_request("/internal").respond_with_data("internal")
    sub = subscribe(api, httpserver.url_for("/hook"))

    with time_machine.travel(START, tick=False):  # the 5 s retry does not come due meanwhile
        touch_contact(api)
        stack.drain()

    assert [r.path for r, _ in httpserver.log] == ["/hook"]
    [item] = deliveries(api, sub["id"])
    [attempt] = delivery(api, sub["id"], item["id"])["attempts"]
    assert item["status"] == "pending" and attempt["status_code"] == 302 and attempt["error"] == "http"
    assert attempt["next_attempt_at"] is not None


def test_dns_and_connection_errors_are_retried(api, stack, monkeypatch):
    def resolver(host, port):
        if host == "down.example.test":
            raise outbound.DnsFailure("down.example.test does not resolve")
        return ["127.0.0.1"]

    monkeypatch.setattr(outbound, "system_resolver", resolver)
    dns = subscribe(api, "http://down.example.test/hook")
    refused = subscribe(api, "http://127.0.0.1:9/hook")  # nobody listens on the discard port

    with time_machine.travel(START, tick=False):  # the 5 s retries do not come due meanwhile
        touch_contact(api)
        stack.drain()

    for sub, kind in ((dns, "dns"), (refused, "connect")):
        [item] = deliveries(api, sub["id"])
        [attempt] = delivery(api, sub["id"], item["id"])["attempts"]
        assert item["status"] == "pending" and attempt["error"] == kind and attempt["status_code"] is None
        assert attempt["next_attempt_at"] is not None


def test_a_test_send_delivers_a_signed_sample_of_the_type(api, stack, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"), ["job.*"])

    sent = api.post(f"/v1/webhooks/{sub['id']}/test", {"event_type": "appointment.cancelled"})
    stack.drain()

    assert sent.status == 202 and sent.json()["test"] is True
    [(headers, body)] = received(httpserver)
    envelope = verified(sub["secret"], headers, body)
    assert envelope["type"] == "appointment.cancelled" and envelope["data"]["status"] == "cancelled"
    logged = delivery(api, sub["id"], sent.json()["id"])
    assert logged["status"] == "delivered" and logged["attempts"][0]["trigger"] == "test"
    assert api.post(f"/v1/webhooks/{sub['id']}/test", {"event_type": "nope.nothing"}).status == 422


def test_a_resend_sends_the_same_event_again_with_a_manual_trigger(api, stack, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    touch_contact(api)
    stack.drain()
    [item] = deliveries(api, sub["id"])

    assert api.post(f"/v1/webhooks/{sub['id']}/deliveries/{item['id']}/resend").status == 202
    stack.drain()

    first, again = bodies(httpserver)
    assert first == again  # the same envelope, the same webhook-id
    logged = delivery(api, sub["id"], item["id"])
    assert logged["status"] == "delivered" and [a["trigger"] for a in logged["attempts"]] == ["scheduled", "manual"]
