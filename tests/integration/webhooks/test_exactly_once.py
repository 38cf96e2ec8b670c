"""Exactly one delivery per (subscription, event): duplicate SQS deliveries, overlapping retries of one attempt,
replayed stream records. And tenants never see each other's events."""

from __future__ import annotations

import threading

from support import deliveries, delivery, received, subscribe, touch_contact

from conveyor.webhooks import repository, service
from conveyor.webhooks.domain import Trigger


def _pump(stack, function_id: str) -> int:
    return sum(stack.pump(s) for s in stack.sources if s.function_id == function_id)


def _until_the_delivery_job_waits_in_its_queue(stack) -> None:
    """Stream -> events function -> job -> dispatcher -> the webhooks queue; the worker has not run yet."""
    for _ in range(5):
        if not (_pump(stack, "DispatcherFunction") + _pump(stack, "EventsFunction")):
            break


def test_a_duplicate_sqs_delivery_of_the_job_sends_once(api, stack, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    touch_contact(api)
    _until_the_delivery_job_waits_in_its_queue(stack)
    [source] = [s for s in stack.sources if s.function_id == "WorkerFunction" and "Webhooks" in s.queue_arn]
    event = source.poll(stack.client)
    assert event is not None and len(event["Records"]) == 1

    stack.invoke("WorkerFunction", event)
    stack.invoke("WorkerFunction", event)  # SQS delivered the same message again
    stack.drain()

    assert len(received(httpserver)) == 1
    [item] = deliveries(api, sub["id"])
    assert item["status"] == "delivered" and item["attempt_count"] == 1


def test_overlapping_runs_of_the_same_attempt_send_once(api, stack, httpserver, monkeypatch):
    httpserver.expect_request("/hook").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    touch_contact(api)
    _until_the_delivery_job_waits_in_its_queue(stack)
    [item] = deliveries(api, sub["id"])

    # Two jobs for the same attempt (say the overdue sweep's and the original) both read the delivery as due
    # before either claims it. DynamoDB applies each conditional write atomically; the lock models that.
    both_read, one_write = threading.Barrier(2), threading.Lock()
    claim = repository.claim_attempt

    def claim_after_both_read(*args, **kwargs):
        both_read.wait(timeout=10)
        with one_write:
            return claim(*args, **kwargs)

    monkeypatch.setattr(repository, "claim_attempt", claim_after_both_read)
    outcomes: list[dict] = []
    runs = [
        threading.Thread(
            target=lambda: outcomes.append(service.deliver("tenant-a", sub["id"], item["id"], 0, Trigger.SCHEDULED))
        )  # fmt: skip
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()

    assert sorted(o["outcome"] for o in outcomes) == ["delivered", "stale"]
    assert len(received(httpserver)) == 1
    assert len(delivery(api, sub["id"], item["id"])["attempts"]) == 1


def test_a_replayed_stream_batch_creates_no_second_delivery(api, stack, httpserver, monkeypatch):
    httpserver.expect_request("/hook").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    seen: list[dict] = []
    invoke = stack.invoke

    def recording(spec, event):
        if (spec if isinstance(spec, str) else spec.logical_id) == "EventsFunction":
            seen.append(event)
        return invoke(spec, event)

    monkeypatch.setattr(stack, "invoke", recording)
    touch_contact(api)
    stack.drain()
    assert len(received(httpserver)) == 1

    for event in list(seen):
        invoke("EventsFunction", event)  # Lambda retried the batch
    stack.drain()

    assert len(received(httpserver)) == 1
    assert len(deliveries(api, sub["id"])) == 1


def test_a_tenant_hears_only_its_own_events(api_as, stack, httpserver):
    httpserver.expect_request("/a").respond_with_data("ok")
    httpserver.expect_request("/b").respond_with_data("ok")
    a, b = api_as("tenant-a"), api_as("tenant-b")
    sub_a = subscribe(a, httpserver.url_for("/a"), ["*"])
    sub_b = subscribe(b, httpserver.url_for("/b"), ["*"])

    touch_contact(a, "c-1", "Ann")
    stack.drain()

    [(_, body)] = received(httpserver, "/a")
    assert b'"tenant_id":"tenant-a"' in body
    assert received(httpserver, "/b") == []
    assert deliveries(b, sub_b["id"]) == []
    [item] = deliveries(a, sub_a["id"])
    assert b.get(f"/v1/webhooks/{sub_a['id']}/deliveries/{item['id']}").status == 404
    assert b.post(f"/v1/webhooks/{sub_a['id']}/deliveries/{item['id']}/resend").status == 404
