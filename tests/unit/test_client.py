"""The Python client's behaviour a caller relies on, against an in-memory transport (no network)."""

from __future__ import annotations

import json

import httpx
import pytest

from conveyor.client import Client, Conflict, NotFound, Unavailable


def client(handler, sleeps=None) -> Client:
    return Client(
        "http://conveyor.test",
        "cvk_x",
        transport=httpx.MockTransport(handler),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_errors_are_typed_and_carry_the_api_code():
    def handler(request):
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "job 'x' not found"}})

    with pytest.raises(NotFound) as raised:
        client(handler).get_job("x")
    assert raised.value.code == "not_found" and raised.value.status == 404


def test_429_and_503_are_retried_after_retry_after():
    answers = [httpx.Response(429, headers={"retry-after": "2"}), httpx.Response(503), httpx.Response(200, json={})]
    sleeps: list[float] = []

    def handler(request):
        return answers.pop(0)

    assert client(handler, sleeps).queues() == {}
    assert sleeps == [2.0, 1.0]  # Retry-After when given, else backoff


def test_retries_give_up_with_a_typed_error():
    def handler(request):
        return httpx.Response(503, json={"error": {"code": "unavailable", "message": "SQS did not answer"}})

    with pytest.raises(Unavailable):
        client(handler).queues()


def test_lists_are_iterated_across_cursors():
    pages = {None: {"items": [{"id": "a"}], "next_cursor": "c1"}, "c1": {"items": [{"id": "b"}], "next_cursor": None}}

    def handler(request):
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    assert [job["id"] for job in client(handler).iter_jobs()] == ["a", "b"]


def test_wait_returns_the_finished_job_and_reports_each_change():
    states = ["queued", "active", "active", "completed"]
    seen: list[str] = []

    def handler(request):
        return httpx.Response(200, json={"id": "j", "state": states.pop(0), "progress": 0, "attempts": 1})

    done = client(handler).wait("j", timeout=10, poll=0, on_change=lambda job: seen.append(job["state"]))
    assert done["state"] == "completed" and seen == ["queued", "active", "completed"]


def test_enqueue_sends_the_job_and_its_idempotency_key():
    sent = {}

    def handler(request):
        sent.update(body=json.loads(request.content), key=request.headers.get("idempotency-key"))
        return httpx.Response(409, json={"error": {"code": "conflict", "message": "different body"}})

    with pytest.raises(Conflict):
        client(handler).enqueue("email.send", {"to": ["a@example.com"]}, delay_seconds=5, idempotency_key="k1")
    assert sent == {
        "body": {"type": "email.send", "payload": {"to": ["a@example.com"]}, "delay_seconds": 5},
        "key": "k1",
    }


def test_enqueue_many_sends_at_most_100_jobs_and_256_kb_a_request_and_numbers_results_across_them():
    sizes: list[tuple[int, int]] = []

    def handler(request):
        items = json.loads(request.content)["items"]
        sizes.append((len(items), len(request.content)))
        return httpx.Response(200, json={"items": [{"index": i, "status": "created"} for i in range(len(items))]})

    small = [{"type": "email.send", "payload": {"to": ["a@example.com"]}}] * 250
    big = [{"type": "email.send", "payload": {"text": "é" * 30_000}}] * 20
    results = client(handler).enqueue_many(small + big)

    assert [n for n, _ in sizes[:2]] == [100, 100] and all(n <= 100 for n, _ in sizes)
    assert sum(n for n, _ in sizes) == 270 and all(size <= 256 * 1024 for _, size in sizes)
    assert len(sizes) >= 2 + 20 * 60_000 // (256 * 1024)  # the big ones (60 KB each as UTF-8) split too
    assert [r["index"] for r in results] == list(range(270))
