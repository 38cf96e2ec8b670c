"""Webhooks: AWS requests and list-price cost per event delivered to one subscription (part of `awscalls`).

N contact changes are written first (through the API, outside the measurement: producing events is the
producer's cost); then, measured, everything that turns them into signed deliveries: the events function on
the reminders table's stream, the conditional delivery put, the delivery job (insert, dispatch, claim, complete),
the attempt's claim and record, KMS Decrypt of the signing secret (cached per process), and the POST itself to
a local receiver (stdlib HTTP server). Figures are per event ("per job" in the shared summary's vocabulary).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import ledger


class _Receiver(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with _Receiver.lock:
            _Receiver.received += 1
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


def run(n: int, world: Callable[..., Any], drain: Callable[[Any], int], summary: Callable[..., dict]) -> dict:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = 0
    try:
        with world({"OutboundAllowPrivate": "true"}) as (stack, client):
            from conveyor.platform.auth import keys
            from conveyor.platform.aws import client as aws_client

            aws_client("kms")  # built before the first request, as in a warm sandbox (cold starts are coldstart's)

            key, _ = keys.create("bench", {"admin"})
            client.key = key
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            created = client.request("POST", "/v1/webhooks", {"url": url, "event_types": ["contact.*"]})
            assert created.status == 201, created.body
            for i in range(n):
                body = {"name": f"Contact {i}", "timezone": "UTC", "channels": ["in_app"]}
                assert client.request("PUT", f"/v1/contacts/c-{i}", body).status == 201
            started = time.perf_counter()
            with ledger.recording() as book:
                drain(stack)
            elapsed = time.perf_counter() - started
            states = _delivery_states(stack)
    finally:
        server.shutdown()
    assert _Receiver.received == n and states.get("delivered") == n, (_Receiver.received, dict(states))
    result = summary("webhooks", n, book, elapsed, states, api_requests=0)
    result["delivered"] = _Receiver.received
    return result


def _delivery_states(stack: Any) -> Any:
    from collections import Counter

    with ledger.paused():
        found: Counter = Counter()
        table = stack.template.physical["WebhooksTable"]
        for page in stack.client("dynamodb").get_paginator("scan").paginate(TableName=table):
            found.update(i["status"]["S"] for i in page["Items"] if i["sk"]["S"].startswith("dlv#"))
        return found
