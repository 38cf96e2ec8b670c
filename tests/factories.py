"""Test data factories: valid requests and events, varied per test with keyword overrides."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}}


def email_job(**overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/jobs body for an email job."""
    return {"type": "email.send", "payload": dict(EMAIL), **overrides}


def sqs_record(body: str | dict[str, Any], *, queue_arn: str, receive_count: int = 1) -> dict[str, Any]:
    """One record of an SQS -> Lambda event, as the event source mapping delivers it."""
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "rh-" + uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


DASHBOARD_FORM = {"content-type": "application/x-www-form-urlencoded"}


class DashboardBrowser:
    """The dashboard through the emulated gateway, with just enough of a browser: a cookie jar and form posts."""

    def __init__(self, stack: Any) -> None:
        self.stack, self.cookies = stack, {}

    def request(self, method: str, path: str, form: dict[str, Any] | None = None, **headers: str) -> Any:
        sent = dict(headers)
        if self.cookies:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = b""
        if form is not None:
            sent.update(DASHBOARD_FORM)
            body = urlencode(form, doseq=True).encode()
        response = self.stack.gateway.handle(method, path, sent, body)
        for cookie in response.cookies:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie or "Max-Age=-1" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def get(self, path: str, **headers: str) -> Any:
        return self.request("GET", path, **headers)

    def post(self, path: str, form: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.request("POST", path, form or {}, **headers)

    def sign_in(self, key: str) -> Any:
        page = self.get("/dashboard/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', page.body.decode()).group(1)
        return self.post("/dashboard/signin", {"csrf": token, "key": key})

    def csrf(self, path: str = "/dashboard") -> str:
        return re.search(r'name="csrf-token" content="([^"]+)"', self.get(path).body.decode()).group(1)
