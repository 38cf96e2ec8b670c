"""A webhook receiver built into the local gateway (never in the template, never deployed): point a subscription
at <local API>/_local/webhook-inbox and see what arrives, signature headers included.

POST records a request and answers 200 (or the status given as ?status=, to try retries); GET lists what
arrived, oldest first; DELETE empties it. The last 200 requests are kept in memory.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

PATH = "/_local/webhook-inbox"
KEPT = 200
_SHOWN_HEADERS = ("content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature")


class WebhookInbox:
    def __init__(self) -> None:
        self._received: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()

    def handle(self, method: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if method == "POST":
            entry = {
                "received_at": datetime.now(UTC).isoformat(),
                "headers": {k: headers[k] for k in _SHOWN_HEADERS if k in headers},
                "body": body.decode("utf-8", "replace"),
            }
            with self._lock:
                self._received.append(entry)
            status = parse_qs(query).get("status", ["200"])[0]
            return (int(status) if status.isdigit() and 200 <= int(status) <= 599 else 200), b'{"received":true}'
        if method == "DELETE":
            with self._lock:
                self._received.clear()
            return 204, b""
        with self._lock:
            items = list(self._received)
        return 200, json.dumps({"items": items}, indent=2).encode()
